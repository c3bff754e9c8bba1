"""The HTTP gateway: every public route, answered over RPC.

The gateway owns no data. It verifies tokens itself, applies the access
rules, calls the domain services with deadlines and maps every failure to the
contract's JSON errors.
"""

from servicekit.base import ServiceBase
from servicekit.config import SERVICE_NAMES, public_base_url
from servicekit.errors import ServiceError

from . import articles, docs, events, feed, login, users
from .authentication import Authenticator
from .broadcast import broadcast
from .cache import ReadCache
from .errors import json_response
from .feed import LiveFeed
from .http import http
from .openapi import openapi_document
from .rpc import ServiceRpc

STATUS_WORDS = {"SERVICE_UNAVAILABLE": "unavailable", "GATEWAY_TIMEOUT": "timeout"}


def _health_status(reply):
    try:
        if isinstance(reply, Exception):
            raise reply
        return reply.result()
    except ServiceError as exc:
        return STATUS_WORDS.get(exc.code, "error")
    except Exception:  # the service answered with a failure (its database?)
        return "error"


# The routes of each resource are in the module named after it, reached
# through the module: `nameko run` starts every class with entrypoints that
# it finds in this module's namespace.
class GatewayService(
    ServiceBase,
    articles.ArticlesRoutes,
    events.EventsRoutes,
    users.UsersRoutes,
    login.LoginRoutes,
    docs.DocsRoutes,
    feed.FeedRoutes,
):
    name = "gateway"

    auth = Authenticator()
    cache = ReadCache()
    live_feed = LiveFeed()

    articles_rpc = ServiceRpc("articles")
    events_rpc = ServiceRpc("events")
    users_rpc = ServiceRpc("users")
    auth_rpc = ServiceRpc("auth")
    notification_rpc = ServiceRpc("notification")

    @http("GET", "/health")
    def health(self, request):
        # All asked at once: the answer takes one deadline, not five.
        pending = {name: self._ask_health(name) for name in SERVICE_NAMES}
        services = {name: _health_status(reply) for name, reply in pending.items()}
        ok = all(status == "ok" for status in services.values())
        return json_response(
            {"status": "ok" if ok else "degraded", "services": services}, 200 if ok else 503
        )

    def _ask_health(self, name):
        try:
            return getattr(self, f"{name}_rpc").health.call_async()
        except ServiceError as exc:
            return exc

    @http("GET", "/api/openapi.json")
    def openapi(self, request):
        return json_response(openapi_document(public_base_url(self.config)))

    # Every gateway copy hears every change (see gateway.broadcast), to keep
    # its read cache and its refused tokens right.

    @broadcast("articles", "article_added")
    @broadcast("articles", "article_updated")
    @broadcast("articles", "article_deleted")
    def on_article_changed(self, payload):
        self.cache.invalidate("articles", _changed_id(payload))
        self.live_feed.publish(payload)  # as the event this handler heard

    @broadcast("events", "event_added")
    @broadcast("events", "event_updated")
    @broadcast("events", "event_deleted")
    def on_event_changed(self, payload):
        self.cache.invalidate("events", _changed_id(payload))
        self.live_feed.publish(payload)

    @broadcast("users", "user_added")
    def on_user_added(self, payload):
        self.cache.invalidate("users", _changed_id(payload))

    @broadcast("users", "user_updated")
    def on_user_updated(self, payload):
        self.cache.invalidate("users", _changed_id(payload))
        self.auth.user_updated(payload["data"]["id"], payload["data"]["role"])

    @broadcast("users", "user_deleted")
    def on_user_deleted(self, payload):
        self.cache.invalidate("users", _changed_id(payload))
        self.auth.user_deleted(payload["data"]["id"])


def _changed_id(payload):
    """The changed item's id; ``None`` (the resource's lists only) if the
    event has none, which the publishers never send."""
    data = payload.get("data") if isinstance(payload, dict) else None
    return data.get("id") if isinstance(data, dict) else None
