"""Prometheus metrics of a service process (scraped at ``OPS_PORT``/metrics).

- ``localnews_worker_seconds`` (histogram) and ``localnews_workers_total``:
  every RPC, event handler and HTTP route, by service, entrypoint and
  outcome (``ok``, an error code such as ``NOT_FOUND``, or ``error`` for an
  unexpected one);
- ``localnews_outbox_backlog``: events committed, not yet published;
- ``localnews_event_retries_total``, ``localnews_events_parked_total``:
  failed event handling, retried later or parked for an operator;
- ``localnews_read_cache_*``: the gateway's read cache (hits are answered
  before any worker, so they are counted only here);
- ``localnews_feed_*``: the gateway's live feed (its clients hold no worker).

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

    def worker_setup(self, worker_ctx):
        self._started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self._started.pop(worker_ctx, None)
        if started is None:
            return
        seconds = time.perf_counter() - started
        labels = (self.service, worker_ctx.entrypoint.method_name, outcome_of(exc_info))
        WORKER_SECONDS.labels(*labels).observe(seconds)
        WORKERS.labels(*labels).inc()
        if worker_log.isEnabledFor(logging.INFO):
            duration_ms = round(seconds * 1000, 2)
            worker_log.info(
                "%s %s in %.2f ms", labels[1], labels[2], duration_ms,
                extra={"outcome": labels[2], "duration_ms": duration_ms},
            )  # fmt: skip

    def worker_teardown(self, worker_ctx):
        self._started.pop(worker_ctx, None)


# What the gateway's live objects report: name -> help, counters then gauges.
READ_CACHE_COUNTERS = {
    "hits": "Reads answered from the cache.",
    "misses": "Cacheable reads that went to a service.",
    "evictions": "Answers dropped to stay within the bounds.",
    "invalidations": "Changes heard that dropped answers.",
}
READ_CACHE_GAUGES = {"entries": "Answers kept.", "bytes": "Bytes kept."}
FEED_COUNTERS = {
    "changes": "Changes heard and sent on to the live feed's clients.",
    "refused": "Feed connections refused at FEED_MAX_CLIENTS (503).",
    "dropped": "Feed clients disconnected for falling behind.",
}
FEED_GAUGES = {"clients": "Live feed clients connected."}


class _Reported:
    """Metrics read from live objects when Prometheus scrapes."""

    def __init__(self):
        self.outboxes = WeakSet()  # servicekit.outbox.Outbox
        self.caches = WeakSet()  # gateway.cache.CacheStore
        self.feeds = WeakSet()  # gateway.feed.FeedHub

    def collect(self):
        backlog = GaugeMetricFamily(
            "localnews_outbox_backlog", "Events committed, not yet published.", labels=["service"]
        )
        for outbox in list(self.outboxes):
            count = outbox.backlog()
            if count is not None:
                backlog.add_metric([outbox.container.service_name], count)
        yield backlog
        yield from _families("read_cache", self.caches, READ_CACHE_COUNTERS, READ_CACHE_GAUGES)
        yield from _families("feed", self.feeds, FEED_COUNTERS, FEED_GAUGES)


def _families(prefix, sources, counters, gauges):
    """``localnews_<prefix>_<name>`` of each source's ``stats()``, by service."""
    families = {
        **{
            name: CounterMetricFamily(f"localnews_{prefix}_{name}", text, labels=["service"])
            for name, text in counters.items()
        },
        **{
            name: GaugeMetricFamily(f"localnews_{prefix}_{name}", text, labels=["service"])
            for name, text in gauges.items()
        },
    }
    for source in list(sources):
        stats = source.stats()
        for name, family in families.items():
            family.add_metric([source.container.service_name], stats[name])
    return families.values()


REPORTED = _Reported()
REGISTRY.register(REPORTED)
