"""The gateway's read cache, and every answer's ``ETag``: one face for reads.

Articles, events and users are read far more often than they change, and
every change is announced on the bus. So each gateway copy keeps the answers
it served, as the bytes it sent, and drops them when their resource changes:

- a ``<resource>_added``/``_updated``/``_deleted`` event drops the item's
  answers and every list page of the resource (every copy hears every event,
  see :mod:`gateway.broadcast`);
- a write made through this copy drops them before it answers (its route
  declares ``changes="articles"``), so a client reads its own writes without
  waiting for the event;
- a fill that raced a change is not stored: each resource has a generation,
  taken before the service is asked and compared when storing;
- after the event consumer reconnects everything is dropped (events were
  missed meanwhile), and no answer is kept beyond ``CACHE_TTL_SECONDS``.

Only answers that are the same for every caller are kept: a route marked
``per_caller`` (users: an admin or the user itself also sees the email) is
cached only for requests without ``Authorization``, and such a request alone
is answered from the cache. Bounded by ``CACHE_MAX_ENTRIES`` and
``CACHE_MAX_BYTES`` (least recently used answers go first);
``CACHE_MAX_ENTRIES=0`` turns the cache off.

What the rest of the gateway calls, on :class:`ReadCache`:

- ``answer(head)``: a hit, as stored bytes (or a 304), or ``None``; the
  server asks it of every request it reads (:mod:`gateway.server`), before
  any WSGI or nameko machinery;
- ``fill(head, route, call, item_id)``: a miss of a cached route: ``call()`` runs the
  worker; its 200 answer gets its ``ETag`` and caching headers, is kept when
  it may be, and comes back (or a 304);
- ``conditional(head, response)``: any other GET answer: its ``ETag``, 304;
- ``changed(resource, item_id)``: drop what a change made stale.
"""

import hashlib
import time
import uuid
from collections import OrderedDict
from typing import NamedTuple
from urllib.parse import parse_qsl

from nameko.extensions import DependencyProvider, SharedExtension
from werkzeug.wrappers import Response

from servicekit.metrics import REPORTED

from .broadcast import BroadcastConsumer
from .headers import READ_METHODS, SECURITY_HEADERS

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
# Other GET answers may be kept if revalidated; writes and errors are not kept.
REVALIDATE = "no-cache"
NOT_STORED = "no-store"

# On /metrics (hits are answered before any worker: counted only here).
CACHE_METRICS = REPORTED.kind(
    "read_cache",
    counters={
        "hits": "Reads answered from the cache.",
        "misses": "Cacheable reads that went to a service.",
        "evictions": "Answers dropped to stay within the bounds.",
        "invalidations": "Changes heard that dropped answers.",
    },
    gauges={"entries": "Answers kept.", "bytes": "Bytes kept."},
)

# A 304 repeats the headers of the 200 but those describing its body.
_NOT_IN_304 = ("Content-Type", "Content-Length", "Link")


def not_modified_headers(headers):
    return [(name, value) for name, value in headers if name not in _NOT_IN_304]


def cache_key(head, names=frozenset()):
    """Where an answer is kept: the path the router matches, and the query
    parameters the route reads (``names``), sorted; a parameter given twice
    is ``None`` (the route refuses it: nothing to keep). Other parameters
    (clients' cache-busters) are left out, and a path's own characters
    (an encoded ``?``) never read as a query."""
    if not names or not head.query:
        return (head.path,)
    pairs = [(name, value) for name, value in parse_qsl(head.query, True) if name in names]
    if len({name for name, _ in pairs}) != len(pairs):
        return None
    return (head.path, *sorted(pairs))


def key_bytes(key):
    return len(key[0]) + sum(len(name) + len(value) for name, value in key[1:])


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


class Hit(NamedTuple):
    """A cached answer for one request: what to send, but the per-request
    headers (``X-Request-Id``, CORS, ``Date``)."""

    status: str  # "200 OK" or "304 Not Modified"
    headers: list  # (name, value) pairs
    head: bytes  # the same headers, encoded
    body: bytes  # empty for a 304 and for HEAD


class CachedAnswer:
    """A 200 answer as sent: body, and headers minus the per-request ones
    (also encoded, for the fast path)."""

    __slots__ = ("etag", "get", "group", "head", "not_modified", "per_caller", "size")

    def __init__(self, body, etag, headers, per_caller, group, key_bytes=0):
        self.etag = etag
        # Each way it is sent, made once.
        self.get = Hit("200 OK", headers, encoded(headers), body)
        self.head = self.get._replace(body=b"")
        not_modified = not_modified_headers(headers)
        self.not_modified = Hit("304 Not Modified", not_modified, encoded(not_modified), b"")
        self.per_caller = per_caller
        self.group = group
        self.size = len(body) + key_bytes + ENTRY_OVERHEAD_BYTES

    def hit(self, head):
        if head.if_none_match is not None and etag_matches(head.if_none_match, self.etag):
            return self.not_modified
        return self.head if head.method == "HEAD" else self.get


class AnswerStore:
    """The kept answers of one process, bounded, by key and by group.

    ``group`` is ``(resource, item_id)`` for an item, ``(resource, None)``
    for list pages. Green threads do not preempt pure Python code, so no lock.
    """

    def __init__(self, max_entries, max_bytes, ttl):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.enabled = max_entries > 0 and max_bytes > 0
        self._answers = OrderedDict()  # key -> (answer, expires_at), least recent first
        self._groups = {}  # group -> keys
        self._generations = {}  # resource -> count of changes heard
        self._epoch = 0  # count of clears
        self.bytes = 0
        self.hits = self.misses = self.evictions = self.invalidations = 0

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


class ReadCache(SharedExtension):
    """The read cache of one gateway process (see the module doc), shared by
    its HTTP server, its WSGI app and its workers."""

    broadcasts = BroadcastConsumer()

    def setup(self):
        config = self.container.config
        self.answers = AnswerStore(
            int(config.get("CACHE_MAX_ENTRIES", DEFAULT_MAX_ENTRIES)),
            int(config.get("CACHE_MAX_BYTES", DEFAULT_MAX_BYTES)),
            float(config.get("CACHE_TTL_SECONDS", DEFAULT_TTL_SECONDS)),
        )
        self.query_names = {}
        self.broadcasts.on_reconnect(self.answers.clear)
        CACHE_METRICS.watch(self)

    def stats(self):
        return self.answers.stats()

    def learn(self, routes):
        """The query parameters each cached list route reads (from its
        documented query): only they make its key (the server calls this
        when it starts)."""
        self.query_names = {
            route.url: frozenset(
                f.data_key or name for name, f in route.doc.query().load_fields.items()
            )
            for route in routes
            if route.cached and route.doc is not None and route.doc.query is not None
        }

    def key_of(self, head):
        return cache_key(head, self.query_names.get(head.path, frozenset()))

    def answer(self, head):
        """A hit for ``head`` (a GET or HEAD), or ``None``."""
        if head.method not in READ_METHODS:
            return None
        key = self.key_of(head)
        cached = None if key is None else self.answers.lookup(key, head.authorized)
        return None if cached is None else cached.hit(head)

    def fill(self, head, route, call, item_id=None):
        """A cached route's answer on a miss: ``call()`` (the worker) gives it;
        a 200 is kept (as the answer of ``item_id``, or of a list) unless its
        resource changed meanwhile or it depends on who asked; it comes back
        with its headers, or as a 304."""
        resource = route.cached
        generation = self.answers.generation(resource)
        self.answers.misses += 1
        response = call()
        if response.status_code != 200:
            return response
        headers = response.headers
        if route.per_caller:
            headers["Cache-Control"] = PRIVATE if head.authorized else ANONYMOUS
            headers["Vary"] = "Authorization"
        else:
            headers["Cache-Control"] = PUBLIC
        body = response.get_data()
        headers["ETag"] = etag_of(body)
        key = self.key_of(head)
        if key is not None and not (head.authorized and route.per_caller):
            stored = [*headers.items(), *SECURITY_HEADERS, ("X-Cache", "hit")]
            answer = CachedAnswer(
                body, headers["ETag"], stored, route.per_caller, group_of(resource, item_id),
                key_bytes=key_bytes(key),
            )  # fmt: skip
            self.answers.store(key, answer, generation)
        headers["X-Cache"] = "miss"
        return self.conditional(head, response)

    def conditional(self, head, response):
        """A 200 GET answer with its ``ETag`` (revalidated by caches unless
        it says otherwise), or a 304 when the client has it."""
        if response.status_code != 200 or response.is_streamed:
            return response
        response.headers.setdefault("Cache-Control", REVALIDATE)
        etag = response.headers.setdefault("ETag", etag_of(response.get_data()))
        if etag_matches(head.if_none_match, etag):
            return Response(status=304, headers=not_modified_headers(response.headers.items()))
        return response

    def changed(self, resource, item_id=None):
        """Drop the answers a change of ``resource`` (its item ``item_id``;
        ``None``, a new one: its lists) made stale."""
        self.answers.invalidate(resource, item_id)


class ReadCacheAccess(DependencyProvider):
    """``self.cache.changed("articles", item_id)`` in a worker (the gateway's
    broadcast handlers: a change heard)."""

    read_cache = ReadCache()

    def get_dependency(self, worker_ctx):
        return self.read_cache
