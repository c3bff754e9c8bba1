"""Routes of articles and events: one factory, five routes per resource.

Access (CONTRACT §3): reads are public; any valid token may create; only the
author or an admin may update or delete. The author check is the service's
``expected_author`` argument, made under the row lock in the same
transaction as the change: one RPC, and no window between a check and the
write. The service knows nothing of HTTP callers; the gateway decides whose
author id to expect (none for an admin).

``authorUID`` defaults to the caller. A non-admin who sends someone else's
``authorUID`` (on create or update) gets 403, rather than having it silently
replaced: the client learns that its request was not done as written.
"""

from servicekit.errors import Forbidden

from .errors import json_response
from .http import http
from .requests import list_params, page_response, read_json


def _is_admin(caller):
    return caller.role == "admin"


def _expected_author(caller):
    """Whose items the caller may change: any (``None``) for an admin."""
    return None if _is_admin(caller) else caller.user_id


def _check_author_field(caller, body):
    if "authorUID" in body and not _is_admin(caller) and body["authorUID"] != caller.user_id:
        raise Forbidden(
            "Only an admin may make another user the author.",
            {"authorUID": ["Must be your own user id."]},
        )


def content_routes(class_name, service, resource, filters=("tag",)):
    """A mixin class of the gateway with the five routes of ``service``.

    Route methods get names of their own (``list_articles``, ``get_event``
    ...): nameko binds entrypoints by attribute name, so the two resources'
    mixins must not share one.
    """
    base = f"/api/{service}"

    def list_items(self, request):
        params = list_params(request, *filters)
        page = self.rpc.call(service, "list", **params)
        return page_response(request, page, page["items"], params)

    def get_item(self, request, item_id):
        return json_response(self.rpc.call(service, "get", item_id))

    def create_item(self, request):
        caller = self.auth.caller(request)
        body = read_json(request)
        _check_author_field(caller, body)
        body.setdefault("authorUID", caller.user_id)
        item = self.rpc.call(service, "create", body)
        self.cache.invalidate(service, item["id"])
        return json_response(item, 201, {"Location": f"{base}/{item['id']}"})

    def update_item(self, request, item_id):
        caller = self.auth.caller(request)
        body = read_json(request)
        _check_author_field(caller, body)
        item = self.rpc.call(
            service, "update", item_id, body, expected_author=_expected_author(caller)
        )
        self.cache.invalidate(service, item_id)
        return json_response(item)

    def delete_item(self, request, item_id):
        caller = self.auth.caller(request)
        item = self.rpc.call(service, "delete", item_id, expected_author=_expected_author(caller))
        self.cache.invalidate(service, item_id)
        return json_response(item)

    routes = {
        f"list_{service}": http("GET", base, cached=service)(list_items),
        f"get_{resource}": http("GET", f"{base}/<item_id>", cached=service)(get_item),
        f"create_{resource}": http("POST", base)(create_item),
        f"update_{resource}": http("PUT", f"{base}/<item_id>")(update_item),
        f"delete_{resource}": http("DELETE", f"{base}/<item_id>")(delete_item),
    }
    for name, method in routes.items():
        method.__name__ = method.__qualname__ = name
    return type(class_name, (), {"__module__": __name__, **routes})


ArticlesRoutes = content_routes("ArticlesRoutes", "articles", "article")
EventsRoutes = content_routes("EventsRoutes", "events", "event", filters=("tag", "from", "to"))
