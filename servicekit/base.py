"""What every service process has, declared once."""

from .config import CheckedConfig
from .logs import CorrelationId
from .shutdown import GracefulShutdown


class ServiceBase:
    """``self.config`` (checked when the service starts), the request's
    correlation id in every log line, and a graceful stop bounded in time.

    No entrypoints here: each service lists its own RPCs and handlers (and
    ``nameko run`` ignores a class without any, imported or not).
    """

    config = CheckedConfig()
    correlation_id = CorrelationId()
    shutdown = GracefulShutdown()
