"""Routes of users: public profiles; changes by an admin or the user itself."""

from servicekit.errors import Forbidden

from .errors import json_response
from .http import http
from .requests import list_params, page_response, read_json, request_key


def shown_to(caller, user):
    """``emailAddress`` only for an admin or the user itself."""
    if caller and (caller.role == "admin" or caller.user_id == user["id"]):
        return user
    return {key: value for key, value in user.items() if key != "emailAddress"}


class UsersRoutes:
    # Reads are cached for anonymous callers only: with a token, the answer
    # may carry an email address (per_caller, see gateway.cache).

    @http("GET", "/api/users", cached="users", per_caller=True)
    def list_users(self, request):
        caller = self.auth.caller(request, required=False)
        params = list_params(request)
        page = self.users_rpc.list(**params)
        return page_response(request, page, params, [shown_to(caller, u) for u in page["items"]])

    @http("GET", "/api/users/<user_id>", cached="users", per_caller=True)
    def get_user(self, request, user_id):
        caller = self.auth.caller(request, required=False)
        return json_response(shown_to(caller, self.users_rpc.get(user_id)))

    @http("POST", "/api/users")
    def create_user(self, request):
        caller, body = self.auth.admin(request), read_json(request)
        user = self.users_rpc.create(body, request_key=request_key(request, caller, body))
        self.cache.invalidate("users", user["id"])
        return json_response(user, 201, {"Location": f"/api/users/{user['id']}"})

    @http("PUT", "/api/users/<user_id>")
    def update_user(self, request, user_id):
        caller = self.auth.caller(request)
        body = read_json(request)
        if caller.role != "admin":
            if caller.user_id != user_id:
                raise Forbidden("Only an admin or the user itself may change a user.")
            if "role" in body:
                raise Forbidden("Only an admin may change a role.")
        user = self.users_rpc.update(user_id, body, request_key=request_key(request, caller, body))
        self.cache.invalidate("users", user_id)
        return json_response(user)

    @http("DELETE", "/api/users/<user_id>")
    def delete_user(self, request, user_id):
        caller = self.auth.admin(request)
        user = self.users_rpc.delete(user_id, request_key=request_key(request, caller))
        self.cache.invalidate("users", user_id)
        return json_response(user)
