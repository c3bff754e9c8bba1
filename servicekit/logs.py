"""Correlation ids in every log line, across HTTP, RPC and events.

The gateway takes ``X-Request-Id`` (or makes one) and puts it in the worker's
context data; nameko copies context data into RPC and event headers, so every
service downstream logs the same id.
"""

import logging
import threading
import uuid

from nameko.extensions import DependencyProvider

CONTEXT_KEY = "correlation_id"

# Green-thread local once eventlet has monkey-patched threading.
_current = threading.local()


def new_correlation_id():
    return uuid.uuid4().hex


def current_correlation_id():
    return getattr(_current, "value", None)


class CorrelationIdFilter(logging.Filter):
    """Adds ``%(correlation_id)s`` to every record ("-" outside a worker)."""

    def filter(self, record):
        record.correlation_id = current_correlation_id() or "-"
        return True


class CorrelationId(DependencyProvider):
    """Makes the worker's correlation id current for its log lines."""

    def worker_setup(self, worker_ctx):
        value = worker_ctx.context_data.get(CONTEXT_KEY)
        if value is None:
            value = new_correlation_id()
            worker_ctx.context_data[CONTEXT_KEY] = value
        _current.value = value

    def worker_teardown(self, worker_ctx):
        _current.value = None

    def get_dependency(self, worker_ctx):
        return worker_ctx.context_data.get(CONTEXT_KEY)
