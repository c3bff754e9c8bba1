"""The live feed: every change of articles and events, as server-sent events.

``GET /api/feed`` answers ``text/event-stream``; each committed change is one
message: ``id:`` its ``eventId``, ``event:`` its type (``article_added``,
``event_updated``...), ``data:`` the item as the public sees it (for a
delete, the deleted item). ``?types=articles,events`` narrows it.

- **Resume**: a client that reconnects with ``Last-Event-ID`` gets every
  change after that one from this gateway's replay buffer (the last
  ``FEED_REPLAY_SIZE`` changes of the last ``FEED_REPLAY_SECONDS``); for an
  id the buffer no longer has (or never had: another gateway copy's buffer
  holds the same changes, with the same ids), a ``reset`` message says to
  reload.
- **Heartbeats**: a comment line every ``FEED_HEARTBEAT_SECONDS`` keeps
  proxies from closing an idle stream; ``retry:`` says how soon to
  reconnect.
- **Cost**: a client is a green thread and a small queue; its answer is
  written by the server after the worker that opened it has returned, so it
  holds no nameko worker. Beyond ``FEED_MAX_CLIENTS`` connections, or
  ``FEED_MAX_CLIENTS_PER_ADDRESS`` from one address: 503. A client that
  leaves frees its slot as soon as its socket closes; one too slow to keep
  up is disconnected (it reconnects and resumes).
- **Order**: every gateway copy hears every change on its own queue, in the
  order each item's changes were committed (the outbox sends them so), and
  hands them on in that order.
"""

import json
import logging
import resource
import time
from collections import deque

import eventlet
from eventlet.queue import Empty, Full, LightQueue
from nameko.extensions import DependencyProvider, SharedExtension
from werkzeug.wrappers import Response

from news.schemas import ArticleSchema, EventSchema
from servicekit.errors import BadRequest, ServiceUnavailable
from servicekit.metrics import REPORTED

from .apidoc import Answer, Doc, Param
from .http import http
from .server import CLIENT_GONE

log = logging.getLogger(__name__)

# On /metrics (feed clients hold no worker: counted only here).
FEED_METRICS = REPORTED.kind(
    "feed",
    counters={
        "changes": "Changes heard and sent on to the live feed's clients.",
        "refused": "Feed connections refused at FEED_MAX_CLIENTS (503).",
        "dropped": "Feed clients disconnected for falling behind.",
    },
    gauges={"clients": "Live feed clients connected."},
)

DEFAULTS = {
    "FEED_MAX_CLIENTS": 2000,
    "FEED_MAX_CLIENTS_PER_ADDRESS": 20,
    "FEED_REPLAY_SIZE": 1000,
    "FEED_REPLAY_SECONDS": 600,
    "FEED_HEARTBEAT_SECONDS": 15,
}
RETRY_MILLISECONDS = 3000
CLIENT_QUEUE_SIZE = 256
STOP_WAIT_SECONDS = 1
SPARE_DESCRIPTORS = 512  # the broker, the other requests, the log files


def _allow_descriptors(wanted):
    """Raise this process's soft limit of open files towards ``wanted`` (a
    feed client is a socket, and the usual soft limit is 1,024), never past
    the hard limit an operator set."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))


def _public_fields(schema):
    return frozenset(field.data_key or name for name, field in schema().dump_fields.items())


# What the public may see of an item: nothing else reaches a client.
PUBLIC_FIELDS = {"articles": _public_fields(ArticleSchema), "events": _public_fields(EventSchema)}
RESOURCE_OF = {"article": "articles", "event": "events"}


class Change:
    __slots__ = ("event_id", "heard_at", "message", "resource", "seq")

    def __init__(self, seq, event_type, payload):
        self.seq = seq
        self.resource = RESOURCE_OF[event_type.split("_", 1)[0]]
        self.event_id = str(payload.get("eventId", seq))
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        public = {key: value for key, value in data.items() if key in PUBLIC_FIELDS[self.resource]}
        body = json.dumps(public, ensure_ascii=False, separators=(",", ":"))
        self.message = f"id: {self.event_id}\nevent: {event_type}\ndata: {body}\n\n".encode()
        self.heard_at = time.monotonic()


RESET = b'event: reset\ndata: {"reason": "The changes since your last id are gone: reload."}\n\n'
HEARTBEAT = b": heartbeat\n\n"
_CLOSE = object()  # in a client's queue: end its stream


class Client:
    __slots__ = ("address", "behind", "queue", "types")

    def __init__(self, types, address=None):
        self.types = types
        self.address = address
        self.queue = LightQueue(CLIENT_QUEUE_SIZE)
        self.behind = False

    def offer(self, change):
        """Queue ``change`` for this client, never waiting: a client too slow
        to take it is told to close (it reconnects and resumes from the
        replay buffer) and offered nothing more."""
        if self.behind or change.resource not in self.types:
            return
        try:
            self.queue.put_nowait(change)
        except Full:
            self.behind = True
            self.close()

    def close(self):
        """End the stream after what is being written: what waits is dropped."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(_CLOSE)


class FeedHub(SharedExtension):
    """The changes this gateway process heard, and its connected clients."""

    def setup(self):
        config = self.container.config
        self.settings = {
            key: float(config.get(key) or default) for key, default in DEFAULTS.items()
        }
        self.changes = deque(maxlen=int(self.settings["FEED_REPLAY_SIZE"]))
        self.clients = set()
        self.seq = 0
        self.refused = self.dropped = 0
        FEED_METRICS.watch(self)
        _allow_descriptors(int(self.settings["FEED_MAX_CLIENTS"]) + SPARE_DESCRIPTORS)

    def stop(self):
        """End every stream properly (clients reconnect, to another copy, and
        resume), giving them a moment to go before the container kills what
        is left of their connections."""
        if self.clients:
            log.info("ending %d live feed streams", len(self.clients))
        for client in list(self.clients):
            client.close()
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while self.clients and time.monotonic() < deadline:
            eventlet.sleep(0.01)

    def stats(self):
        return {
            "clients": len(self.clients),
            "changes": self.seq,
            "refused": self.refused,
            "dropped": self.dropped,
        }

    def publish(self, event_type, payload):
        self.seq += 1
        change = Change(self.seq, event_type, payload)
        self.changes.append(change)
        too_old = time.monotonic() - self.settings["FEED_REPLAY_SECONDS"]
        while self.changes and self.changes[0].heard_at < too_old:
            self.changes.popleft()
        for client in list(self.clients):
            client.offer(change)

    def connect(self, types, last_event_id, address=None, on_client_gone=None):
        """The messages of a new client from ``address``: a generator for the
        server to write. ``on_client_gone(callback)``: the server's way to say
        that the client left, which frees its slot at once."""
        if len(self.clients) >= self.settings["FEED_MAX_CLIENTS"]:
            self.refused += 1
            raise ServiceUnavailable("The live feed has all the clients it takes; retry later.")
        same_address = sum(1 for client in self.clients if client.address == address)
        if address is not None and same_address >= self.settings["FEED_MAX_CLIENTS_PER_ADDRESS"]:
            self.refused += 1
            raise ServiceUnavailable(
                "The live feed has all the clients it takes from your address; close one first."
            )
        client = Client(types, address)
        self.clients.add(client)  # first: nothing committed meanwhile is missed
        if on_client_gone is not None:
            on_client_gone(client.close)
        return self._messages(client, self._since(last_event_id, types))

    def _since(self, last_event_id, types):
        """The buffered changes after ``last_event_id``: a list, or ``None``
        if the buffer has no such id."""
        if last_event_id is None:
            return []
        buffered = list(self.changes)
        for index, change in enumerate(buffered):
            if change.event_id == last_event_id:
                return [later for later in buffered[index + 1 :] if later.resource in types]
        return None

    def _messages(self, client, replay):
        heartbeat = self.settings["FEED_HEARTBEAT_SECONDS"]
        try:
            yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
            last_seq = 0
            if replay is None:
                yield RESET
            for change in replay or ():
                yield change.message
                last_seq = change.seq
            while True:
                try:
                    change = client.queue.get(timeout=heartbeat)
                except Empty:
                    yield HEARTBEAT
                    continue
                if change is _CLOSE:
                    self.dropped += client.behind
                    return
                if change.seq > last_seq:  # not replayed already
                    yield change.message
                    last_seq = change.seq
        finally:  # the client left (a write failed), fell behind, or we stop
            self.clients.discard(client)


class LiveFeed(DependencyProvider):
    """``self.live_feed.publish(payload)`` in a broadcast handler of article
    or event changes (the event's type is the handler's);
    ``self.live_feed.hub`` for the route."""

    hub = FeedHub()

    def get_dependency(self, worker_ctx):
        return _HandlerFeed(self.hub, getattr(worker_ctx.entrypoint, "event_type", None))


class _HandlerFeed:
    def __init__(self, hub, event_type):
        self.hub = hub
        self._event_type = event_type

    def publish(self, payload):
        if isinstance(payload, dict):
            self.hub.publish(self._event_type, payload)


def feed_types(request):
    """``?types=articles,events``: the resources asked for (both by default)."""
    asked = request.args.get("types")
    if asked is None:
        return frozenset(PUBLIC_FIELDS)
    types = frozenset(part.strip() for part in asked.split(",") if part.strip())
    if not types or types - PUBLIC_FIELDS.keys():
        raise BadRequest(
            "types is a comma-separated list of articles and events.",
            {"types": [f"Not one of {sorted(PUBLIC_FIELDS)}."]},
        )
    return types


# One message of the feed, as an event-stream parser reads it.
FEED_MESSAGE = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "The change's `eventId`."},
        "event": {
            "type": "string",
            "enum": [
                *(f"{kind}_{change}" for kind in ("article", "event")
                  for change in ("added", "updated", "deleted")),
                "reset",
            ],
        },
        "data": {"type": "string", "description": "The item as JSON; for `reset`, why."},
        "retry": {"type": "integer", "description": "Milliseconds to wait before reconnecting."},
    },
}  # fmt: skip
TYPES = Param(
    "types",
    "query",
    {
        "description": "Only these resources' changes: `articles`, `events`, or "
        "`articles,events` (the default).",
        "schema": {"type": "string", "pattern": r"^(articles|events)(,(articles|events))?$"},
    },
)
LAST_EVENT_ID = Param(
    "LastEventId",
    "header",
    {
        "name": "Last-Event-ID",
        "description": "The `id` of the last message a reconnecting client got "
        "(browsers' EventSource sends it): every change after it follows, or a `reset` "
        "message if this gateway no longer holds that change.",
        "schema": {"type": "string"},
    },
)
FEED_DOC = Doc(
    "Every change of articles and events, as it happens",
    "Feed",
    {
        200: Answer(
            "A stream of server-sent events that stays open. Each change is "
            "`id: <eventId>`, `event: <type>` (`article_added`, `article_updated`, "
            "`article_deleted`, `event_added`, ...), `data: <the item as the public "
            "sees it, as JSON; the deleted item for a delete>`. A comment line "
            "keeps idle streams open; `retry:` says how soon to reconnect.",
            content={"text/event-stream": {"schema": FEED_MESSAGE}},
            headers=("Cache-Control",),
        )
    },
    (400, (503, "The feed has all the clients it takes (`FEED_MAX_CLIENTS`).")),
    params=(TYPES, LAST_EVENT_ID),
    conditional=False,
)


class FeedRoutes:
    @http("GET", "/api/feed", doc=FEED_DOC)
    def get_feed(self, request):
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        types = feed_types(request)
        if request.method == "HEAD":
            return Response(status=200, headers=headers, mimetype="text/event-stream")
        # An empty Last-Event-ID is none (as EventSource sends it before any id).
        last_event_id = request.headers.get("Last-Event-ID") or None
        messages = self.live_feed.hub.connect(
            types,
            last_event_id,
            request.remote_addr,
            request.environ.get(CLIENT_GONE),  # the server's: the client left
        )
        return Response(messages, headers=headers, mimetype="text/event-stream")
