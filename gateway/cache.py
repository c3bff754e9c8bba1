"""The gateway's read cache: public GET answers, kept until a change is heard.

Articles, events and users are read far more often than they change, and
every change is announced on the bus. So each gateway copy keeps the answers
it served, as the bytes it sent, and drops them when their resource changes:

- a ``<resource>_added``/``_updated``/``_deleted`` event drops the item's
  answers and every list page of the resource (every copy hears every event,
  see :mod:`gateway.broadcast`);
- a write made through this copy drops them before it answers, so a client
  reads its own writes without waiting for the event;
- a fill that raced a change is not stored: each resource has a generation,
  taken before the RPC and compared when storing;
- after the event consumer reconnects everything is dropped (events were
  missed meanwhile), and no answer is kept beyond ``CACHE_TTL_SECONDS``.

Only answers that are the same for every caller are kept: a route marked
``per_caller`` (users: an admin or the user itself also sees the email) is
cached only for requests without ``Authorization``, and such a request alone
is answered from the cache. Hits are served by the WSGI app before a nameko
worker exists (:mod:`gateway.http`); misses and writes take the worker path.

Bounded by ``CACHE_MAX_ENTRIES`` and ``CACHE_MAX_BYTES`` (least recently used
answers go first); ``CACHE_MAX_ENTRIES=0`` turns the cache off.
"""

import hashlib
import time
import uuid
from collections import OrderedDict

from nameko.extensions import DependencyProvider, SharedExtension

from servicekit.metrics import REPORTED

from .broadcast import BroadcastConsumer

DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_TTL_SECONDS = 300.0
# Bookkeeping per answer beyond its body (key, headers, indexes), roughly.
ENTRY_OVERHEAD_BYTES = 600
# One answer may take at most this share of the byte budget.
MAX_ANSWER_SHARE = 16

# Public answers may be stored by browsers and proxies, which must ask again
# (cheaply: If-None-Match, 304) before using them.
PUBLIC = "public, no-cache"
ANONYMOUS = "no-cache"
PRIVATE = "private, no-cache"


# A 304 repeats the headers of the 200 but those describing its body.
_NOT_IN_304 = ("Content-Type", "Content-Length", "Link")


def not_modified_headers(headers):
    return [(name, value) for name, value in headers if name not in _NOT_IN_304]


def cache_key(path, query=""):
    """Where an answer is kept: its path (no trailing slash) and query as sent."""
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path + "?" + query if query else path


def group_of(resource, item_id=None):
    """``(resource, canonical id)``; ``(resource, None)`` for the list pages.

    Ids are UUIDs that clients may spell in any case or form: the cache
    groups them as the events name them.
    """
    if item_id is None:
        return resource, None
    try:
        return resource, str(uuid.UUID(str(item_id)))
    except ValueError:
        return resource, str(item_id)


def etag_of(body):
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def etag_matches(if_none_match, etag):
    """RFC 9110's weak comparison of ``If-None-Match`` with our ``etag``."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


def encoded(headers):
    """Header lines as they go on the wire."""
    return b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in headers)


class CachedAnswer:
    """A 200 answer as sent: body, and headers minus the per-request ones
    (also encoded, for :mod:`gateway.fastpath`)."""

    __slots__ = (
        "body",
        "etag",
        "group",
        "head",
        "headers",
        "not_modified_head",
        "not_modified_headers",
        "per_caller",
        "size",
    )

    def __init__(self, body, etag, headers, per_caller, group):
        self.body = body
        self.etag = etag
        self.headers = headers
        self.not_modified_headers = not_modified_headers(headers)
        self.head = encoded(headers)
        self.not_modified_head = encoded(self.not_modified_headers)
        self.per_caller = per_caller
        self.group = group
        self.size = len(body) + ENTRY_OVERHEAD_BYTES


class CacheStore(SharedExtension):
    """The answers of one gateway process, shared by its WSGI app and workers.

    ``group`` is ``(resource, item_id)`` for an item, ``(resource, None)``
    for list pages. Green threads do not preempt pure Python code, so no lock.
    """

    broadcasts = BroadcastConsumer()

    def setup(self):
        config = self.container.config
        self.max_entries = int(config.get("CACHE_MAX_ENTRIES", DEFAULT_MAX_ENTRIES))
        self.max_bytes = int(config.get("CACHE_MAX_BYTES", DEFAULT_MAX_BYTES))
        self.ttl = float(config.get("CACHE_TTL_SECONDS", DEFAULT_TTL_SECONDS))
        self.enabled = self.max_entries > 0 and self.max_bytes > 0
        self._answers = OrderedDict()  # key -> (answer, expires_at), least recent first
        self._groups = {}  # group -> keys
        self._generations = {}  # resource -> count of changes heard
        self._epoch = 0  # count of clears
        self.bytes = 0
        self.hits = self.misses = self.evictions = self.invalidations = 0
        self.broadcasts.on_reconnect(self.clear)
        REPORTED.caches.add(self)

    def lookup(self, key, authorized):
        """The answer for ``key``, if any, and if it may be given to a request
        with (``authorized``) or without an ``Authorization`` header."""
        found = self._answers.get(key)
        if found is None:
            return None
        answer, expires_at = found
        if time.monotonic() >= expires_at:
            self._drop(key)
            return None
        if authorized and answer.per_caller:
            return None
        self._answers.move_to_end(key)
        self.hits += 1
        return answer

    def generation(self, resource):
        """Take this before reading; hand it to :meth:`store` after."""
        return self._epoch, self._generations.get(resource, 0)

    def store(self, key, answer, generation):
        """Keep ``answer`` unless its resource changed since ``generation``."""
        resource = answer.group[0]
        if not self.enabled or generation != self.generation(resource):
            return False
        if answer.size * MAX_ANSWER_SHARE > self.max_bytes:
            return False
        if key in self._answers:
            self._drop(key)
        self._answers[key] = (answer, time.monotonic() + self.ttl)
        self._groups.setdefault(answer.group, set()).add(key)
        self.bytes += answer.size
        while len(self._answers) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self._answers)))
            self.evictions += 1
        return True

    def invalidate(self, resource, item_id=None):
        """A change of ``resource`` (of its item ``item_id``): drop the
        item's answers and every list page of the resource."""
        self._generations[resource] = self._generations.get(resource, 0) + 1
        self.invalidations += 1
        for group in (group_of(resource), group_of(resource, item_id)):
            for key in self._groups.pop(group, ()):
                self._drop(key)

    def clear(self):
        self._epoch += 1
        self._answers.clear()
        self._groups.clear()
        self.bytes = 0

    def stats(self):
        return {
            "enabled": self.enabled,
            "entries": len(self._answers),
            "bytes": self.bytes,
            "maxEntries": self.max_entries,
            "maxBytes": self.max_bytes,
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
            "invalidations": self.invalidations,
        }

    def _drop(self, key):
        found = self._answers.pop(key, None)
        if found is None:
            return
        answer = found[0]
        self.bytes -= answer.size
        keys = self._groups.get(answer.group)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._groups[answer.group]


class ReadCache(DependencyProvider):
    """``self.cache.invalidate("articles", item_id)`` after a change."""

    store = CacheStore()

    def get_dependency(self, worker_ctx):
        return self.store
