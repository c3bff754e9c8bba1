"""What every service process has, declared once."""

from .config import CheckedConfig
from .logs import CorrelationId
from .metrics import WorkerMetrics
from .ops import OpsPort
from .shutdown import GracefulShutdown


class ServiceBase:
    """``self.config`` (checked when the service starts), the request's
    correlation id in every log line, a graceful stop bounded in time, its
    workers timed and counted, and the operations port (metrics, probes).

    No entrypoints here: each service lists its own RPCs and handlers (and
    ``nameko run`` ignores a class without any, imported or not).
    """

    config = CheckedConfig()
    correlation_id = CorrelationId()
    shutdown = GracefulShutdown()
    worker_metrics = WorkerMetrics()
    ops = OpsPort()
