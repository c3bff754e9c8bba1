"""Prometheus metrics of a service process (scraped at ``OPS_PORT``/metrics).

- ``localnews_worker_seconds`` (histogram) and ``localnews_workers_total``:
  every RPC, event handler and HTTP route, by service, entrypoint and
  outcome (``ok``, an error code such as ``NOT_FOUND``, or ``error`` for an
  unexpected one);
- ``localnews_event_retries_total``, ``localnews_events_parked_total``:
  failed event handling, retried later or parked for an operator;
- what live objects report (:data:`REPORTED`): ``localnews_outbox_backlog``
  (events committed, not yet published) and whatever a service registers of
  its own (the gateway: its read cache and its live feed).

The metric objects live once per process; whatever reports into them
(containers in tests, say) labels with its service name.
"""

import logging
import time
from weakref import WeakSet

from nameko.extensions import DependencyProvider
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .errors import ServiceError

WORKER_SECONDS = Histogram(
    "localnews_worker_seconds",
    "Time a worker took, from its start to its result.",
    ["service", "entrypoint", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WORKERS = Counter("localnews_workers", "Workers run.", ["service", "entrypoint", "outcome"])
EVENT_RETRIES = Counter(
    "localnews_event_retries", "Events whose handler failed, sent to wait for a retry.",
    ["service", "queue"],
)  # fmt: skip
EVENTS_PARKED = Counter(
    "localnews_events_parked", "Events parked in a dead-letter queue after their last try.",
    ["service", "queue"],
)  # fmt: skip


# One line a worker, at INFO: off unless ACCESS_LOG_LEVEL is INFO.
worker_log = logging.getLogger("localnews.workers")


def outcome_of(exc_info):
    if exc_info is None:
        return "ok"
    exc = exc_info[1]
    return exc.code if isinstance(exc, ServiceError) else "error"


class WorkerMetrics(DependencyProvider):
    """Times and counts every worker of the service (no dependency to use)."""

    def setup(self):
        self.service = self.container.service_name
        self._started = {}
        self._series = {}  # (method, outcome) -> its two labelled metrics

    def worker_setup(self, worker_ctx):
        self._started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self._started.pop(worker_ctx, None)
        if started is None:
            return
        seconds = time.perf_counter() - started
        labels = (self.service, worker_ctx.entrypoint.method_name, outcome_of(exc_info))
        series = self._series.get(labels)
        if series is None:  # looked up once: labels() takes a lock and builds a key each time
            series = self._series[labels] = (
                WORKER_SECONDS.labels(*labels),
                WORKERS.labels(*labels),
            )
        series[0].observe(seconds)
        series[1].inc()
        if worker_log.isEnabledFor(logging.INFO):
            duration_ms = round(seconds * 1000, 2)
            worker_log.info(
                "%s %s in %.2f ms", labels[1], labels[2], duration_ms,
                extra={"outcome": labels[2], "duration_ms": duration_ms},
            )  # fmt: skip

    def worker_teardown(self, worker_ctx):
        self._started.pop(worker_ctx, None)


class Reported:
    """Metrics read from live objects when Prometheus scrapes: each kind is
    ``localnews_<prefix>_<name>`` for the names of its sources' ``stats()``
    (a dict; a value of ``None``, not known now, is left out), by service.

    ``REPORTED.kind("outbox", gauges={"backlog": "Events committed, not yet
    published."})`` once, then ``.watch(source)`` for each live source (its
    ``container`` names the service). Sources are held weakly.
    """

    def __init__(self):
        self._kinds = []

    def kind(self, prefix, counters=None, gauges=None):
        kind = _Kind(prefix, counters or {}, gauges or {})
        self._kinds.append(kind)
        return kind

    def collect(self):
        for kind in self._kinds:
            yield from kind.families()


class _Kind:
    def __init__(self, prefix, counters, gauges):
        self.prefix = prefix
        self.metrics = [
            *((name, text, CounterMetricFamily) for name, text in counters.items()),
            *((name, text, GaugeMetricFamily) for name, text in gauges.items()),
        ]
        self.sources = WeakSet()

    def watch(self, source):
        self.sources.add(source)

    def families(self, sources=None):
        """The metric families of ``sources`` (default: every one watched)."""
        families = {
            name: family(f"localnews_{self.prefix}_{name}", text, labels=["service"])
            for name, text, family in self.metrics
        }
        for source in list(self.sources) if sources is None else sources:
            stats = source.stats()
            for name, family in families.items():
                if stats.get(name) is not None:
                    family.add_metric([source.container.service_name], stats[name])
        return families.values()


REPORTED = Reported()
REGISTRY.register(REPORTED)
