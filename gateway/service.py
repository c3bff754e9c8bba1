"""The HTTP gateway: every public route, answered over RPC.

The gateway owns no data. It verifies tokens itself, applies the access
rules, calls the domain services with deadlines and maps every failure to the
contract's JSON errors.
"""

from nameko.events import BROADCAST, event_handler

from servicekit.config import SERVICE_NAMES, Settings
from servicekit.errors import ServiceError
from servicekit.logs import CorrelationId

from . import content, users
from .dependencies import Authenticator, ServiceRpc
from .errors import json_response
from .http import http
from .openapi import openapi_document

STATUS_WORDS = {"SERVICE_UNAVAILABLE": "unavailable", "GATEWAY_TIMEOUT": "timeout"}


def _health_status(reply):
    try:
        if isinstance(reply, Exception):
            raise reply
        return reply.wait()
    except ServiceError as exc:
        return STATUS_WORDS.get(exc.code, "error")
    except Exception:  # the service answered with a failure (its database?)
        return "error"


def _users_event(event_type):
    # Every gateway copy needs every event (its own queue, gone when it stops).
    return event_handler("users", event_type, handler_type=BROADCAST, reliable_delivery=False)


# The route classes are reached through their modules: `nameko run` starts
# every class with entrypoints that it finds in this module's namespace.
class GatewayService(
    users.UsersRoutes, users.AuthRoutes, content.ArticlesRoutes, content.EventsRoutes
):
    name = "gateway"

    config = Settings()
    correlation_id = CorrelationId()
    rpc = ServiceRpc()
    auth = Authenticator()

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
            return self.rpc.call_async(name, "health")
        except ServiceError as exc:
            return exc

    @http("GET", "/api/openapi.json")
    def openapi(self, request):
        return json_response(openapi_document())

    @_users_event("user_deleted")
    def on_user_deleted(self, payload):
        self.auth.user_deleted(payload["data"]["id"])

    @_users_event("user_updated")
    def on_user_updated(self, payload):
        self.auth.user_updated(payload["data"]["id"], payload["data"]["role"])
