"""Log lines that say what matters, once, with the request they belong to.

- Correlation ids across HTTP, RPC and events: the gateway takes
  ``X-Request-Id`` (or makes one) and puts it in the worker's context data;
  nameko copies context data into RPC and event headers, so every service
  downstream logs the same id. Each record also names the service and, in a
  worker, its entrypoint.
- An expected client error (a ``NotFound``, a ``ValidationError``...) is one
  line at INFO without a traceback; nameko logs it as a warning with one. An
  expected failure of an event handler that retries is only its own line
  (what failed, where, the next try).
- A trouble that lasts (the broker down) is said once when it starts and
  once when it ends (:class:`Trouble`), not at every retry.
- ``LOG_FORMAT=json``: one JSON object a line (config.yml's ``json``
  formatter), with ``service``, ``level``, ``correlation_id``,
  ``entrypoint`` and, on the lines of ``localnews.workers`` (one a worker,
  at ``ACCESS_LOG_LEVEL``), ``outcome`` and ``duration_ms``.
"""

import logging
import os
import threading

from nameko.extensions import DependencyProvider

CONTEXT_KEY = "correlation_id"

# Green-thread local once eventlet has monkey-patched threading.
_current = threading.local()
# The service of this process (the last container set up, in a test process).
_service = {"name": "-"}


def new_correlation_id():
    # 128 random bits as 32 hex digits, as uuid4().hex looks, at a fifth of
    # its cost (every request without an id of its own makes one).
    return os.urandom(16).hex()


def current_correlation_id():
    return getattr(_current, "value", None)


# The managed thread of one HTTP connection (gateway.http.GatewayServer).
HTTP_CONNECTION = "http connection"


class CorrelationIdFilter(logging.Filter):
    """Adds ``correlation_id``, ``service`` and ``entrypoint`` to every record
    ("-" outside a worker); turns nameko's report of an expected error into
    one line at INFO; and leaves out nameko's line for each HTTP connection
    it closes at the end of a stop (idle keep-alive connections, feed
    streams: thousands of lines saying nothing; its count line stays)."""

    def filter(self, record):
        record.correlation_id = current_correlation_id() or "-"
        record.service = _service["name"]
        record.entrypoint = getattr(_current, "entrypoint", None) or "-"
        if record.name == "nameko.containers":
            if str(record.msg).startswith("(expected)"):
                if _said_by_its_entrypoint(record):
                    return False
                record.exc_info = record.exc_text = None
                record.levelno, record.levelname = logging.INFO, "INFO"
            elif record.msg == "killing managed thread `%s`" and record.args == (HTTP_CONNECTION,):
                return False
        return True


def _said_by_its_entrypoint(record):
    """An entrypoint that logs its own failures (a retrying event handler
    says what failed and when it tries again) needs no second line."""
    worker_ctx = record.args[0] if isinstance(record.args, tuple) and record.args else None
    entrypoint = getattr(worker_ctx, "entrypoint", None)
    return getattr(entrypoint, "logs_its_failures", False)


class Trouble:
    """A problem that lasts: said once as a warning when it starts (the
    repeats at DEBUG), and once when it is over."""

    def __init__(self, logger):
        self.logger = logger
        self.active = False

    def occurred(self, message, *args):
        level = logging.DEBUG if self.active else logging.WARNING
        self.logger.log(level, message, *args)
        self.active = True

    def over(self, message, *args):
        if self.active:
            self.logger.info(message, *args)
        self.active = False


class CorrelationId(DependencyProvider):
    """Makes the worker's correlation id current for its log lines."""

    def setup(self):
        _service["name"] = self.container.service_name

    # worker_ctx.data, not .context_data: that is a copy made on each read
    # (with the call id stack, a uuid4 the first time), so a value set in it
    # was lost, and the worker's calls and events went without the id.
    def worker_setup(self, worker_ctx):
        value = worker_ctx.data.get(CONTEXT_KEY)
        if value is None:
            value = worker_ctx.data[CONTEXT_KEY] = new_correlation_id()
        _current.value = value
        _current.entrypoint = worker_ctx.entrypoint.method_name

    def worker_teardown(self, worker_ctx):
        _current.value = _current.entrypoint = None

    def get_dependency(self, worker_ctx):
        return worker_ctx.data.get(CONTEXT_KEY)
