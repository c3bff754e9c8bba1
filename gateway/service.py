"""The HTTP gateway: every public route, answered over RPC.

The gateway owns no data. It verifies tokens itself, applies the access
rules, calls the domain services with deadlines and maps every failure to the
contract's JSON errors.
"""

from servicekit.base import ServiceBase
from servicekit.config import public_base_url
from servicekit.errors import ServiceError

from . import articles, docs, events, feed, login, users
from .apidoc import Answer, Doc, Schema
from .authentication import Authenticator
from .broadcast import broadcast
from .cache import ReadCacheAccess
from .errors import RETRY_UNAVAILABLE_SECONDS, json_response
from .feed import LiveFeed
from .http import http
from .openapi import openapi_document
from .requests import RequestKeys
from .rpc import ServiceRpc

STATUS_WORDS = {"SERVICE_UNAVAILABLE": "unavailable", "GATEWAY_TIMEOUT": "timeout"}
# What /health asks: every service the gateway calls (each a ``<name>_rpc``).
HEALTH_OF = ("users", "auth", "articles", "events", "notification")

_SERVICE_STATUS = {"type": "string", "enum": ["ok", "starting", "unavailable", "timeout", "error"]}
HEALTH = Schema(
    "Health",
    {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded"]},
            "services": {
                "type": "object",
                "properties": dict.fromkeys(HEALTH_OF, _SERVICE_STATUS),
                "required": list(HEALTH_OF),
                "additionalProperties": False,
                "description": "Per service: `ok`; `starting` (auth, until the seeded admin "
                "can log in); `unavailable` (not running); `timeout`; `error`.",
            },
        },
        "required": ["status", "services"],
    },
)
READ = ("ETag", "Cache-Control")


def _health_status(reply):
    """A service's word on /health: refused before the call (not running),
    the deadline passed, or what it answered; an answer that is a failure
    (its database away, say) is ``error``."""
    if isinstance(reply, ServiceError):
        return STATUS_WORDS.get(reply.code, "error")
    try:
        return reply.result()
    except ServiceError as exc:  # the deadline passed, the broker went away
        return STATUS_WORDS.get(exc.code, "error")
    except Exception:
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
    cache = ReadCacheAccess()
    request_keys = RequestKeys()
    live_feed = LiveFeed()

    articles_rpc = ServiceRpc("articles")
    events_rpc = ServiceRpc("events")
    users_rpc = ServiceRpc("users")
    auth_rpc = ServiceRpc("auth")
    notification_rpc = ServiceRpc("notification")

    @http(
        "GET",
        "/health",
        doc=Doc(
            "Health of every service",
            "Operations",
            {
                200: Answer(
                    "Every service is `ok` (auth: the seeded admin can log in).", HEALTH, READ
                ),
                503: Answer("A service is not `ok`: `status` is `degraded`.", HEALTH),
            },
        ),
    )
    def health(self, request):
        # All asked at once: the answer takes one deadline, not five.
        pending = {name: self._ask_health(name) for name in HEALTH_OF}
        services = {name: _health_status(reply) for name, reply in pending.items()}
        ok = all(status == "ok" for status in services.values())
        if ok:
            return json_response({"status": "ok", "services": services})
        return json_response(
            {"status": "degraded", "services": services},
            503,
            {"Retry-After": str(RETRY_UNAVAILABLE_SECONDS)},
        )

    def _ask_health(self, name):
        try:
            return getattr(self, f"{name}_rpc").health.call_async()
        except ServiceError as exc:
            return exc

    @http(
        "GET",
        "/api/openapi.json",
        doc=Doc(
            "This document",
            "Documentation",
            {
                200: Answer(
                    "The OpenAPI 3 document.",
                    {"type": "object", "description": "An OpenAPI 3.0 document."},
                    READ,
                )
            },
        ),
    )
    def openapi(self, request):
        return json_response(openapi_document(public_base_url(self.config), type(self)))

    # Every gateway copy hears every change (see gateway.broadcast), to keep
    # its read cache and its refused tokens right.

    @broadcast("articles", "article_added")
    @broadcast("articles", "article_updated")
    @broadcast("articles", "article_deleted")
    def on_article_changed(self, payload):
        self.cache.changed("articles", _changed_id(payload))
        self.live_feed.publish(payload)  # as the event this handler heard

    @broadcast("events", "event_added")
    @broadcast("events", "event_updated")
    @broadcast("events", "event_deleted")
    def on_event_changed(self, payload):
        self.cache.changed("events", _changed_id(payload))
        self.live_feed.publish(payload)

    @broadcast("users", "user_added")
    def on_user_added(self, payload):
        self.cache.changed("users", _changed_id(payload))

    @broadcast("users", "user_updated")
    def on_user_updated(self, payload):
        self.cache.changed("users", _changed_id(payload))
        data = payload["data"]
        # Tokens of an older generation are refused from now on. (An event
        # published before generations existed has none: 0 refuses nothing.)
        self.auth.user_updated(data["id"], data.get("tokenGeneration", 0))

    @broadcast("users", "user_deleted")
    def on_user_deleted(self, payload):
        self.cache.changed("users", _changed_id(payload))
        self.auth.user_deleted(payload["data"]["id"])


def _changed_id(payload):
    """The changed item's id; ``None`` (the resource's lists only) if the
    event has none, which the publishers never send."""
    data = payload.get("data") if isinstance(payload, dict) else None
    return data.get("id") if isinstance(data, dict) else None
