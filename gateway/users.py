"""Routes of users: public profiles; changes by an admin or the user itself."""

from servicekit.errors import Forbidden
from servicekit.pagination import PageQuerySchema
from users.schemas import UserSchema

from .apidoc import (
    OPTIONAL_TOKEN,
    TOKEN,
    Access,
    OneOf,
    ResourceWords,
    View,
    resource_docs,
    server_owned,
)
from .errors import json_response
from .http import http
from .requests import list_params, page_response, read_json

_META = {
    "type": "object",
    "properties": {"likes": {"type": "integer", "minimum": 0}},
    "required": ["likes"],
    "additionalProperties": False,
}
_IGNORED = ", ".join(f"`{name}`" for name in server_owned(UserSchema))
_ROLE = ("role", "Only an admin may set it.")
USER = View(
    "User",
    UserSchema,
    "A user with its email address: as an admin, or the user itself, sees it.",
    answer=True,
    notes=(("meta", _META),),
)
PUBLIC_USER = View(
    "PublicUser",
    UserSchema,
    "A user as anyone else sees it: without the email address.",
    answer=True,
    exclude=("emailAddress",),
    notes=(("meta", _META),),
)
_RUNNING = "or a request with the same Idempotency-Key is still running."
ADMIN = Access("admin", TOKEN, "The caller is no admin.")
DOCS = resource_docs(
    ResourceWords(
        "users",
        "user",
        PageQuerySchema,
        item=USER,
        read=OneOf(
            "`User` (with `emailAddress`) for an admin or the user itself; "
            "`PublicUser` for anyone else and without a token.",
            (USER, PUBLIC_USER),
        ),
        new=View(
            "NewUser",
            UserSchema,
            f"A user to create. The server-owned fields of the answer ({_IGNORED}) may be "
            "sent back and are ignored; any other unknown field is a 422.",
            notes=(_ROLE,),
        ),
        update=View(
            "UserUpdate",
            UserSchema,
            "A change of a user: only the fields sent change (a new `password` is stored "
            "like on create). A `password` sent, or a `role` changed, ends every token the "
            "user was given before: the user logs in again. Server-owned fields "
            f"({_IGNORED}) are ignored; any other unknown field is a 422.",
            partial=True,
            notes=(_ROLE,),
        ),
        access={
            "list": Access("public", OPTIONAL_TOKEN),
            "get": Access("public", OPTIONAL_TOKEN),
            "create": ADMIN,
            "update": Access(
                "admin, or the user itself",
                TOKEN,
                "The caller is neither an admin nor the user itself, or changes `role` "
                "without being an admin.",
            ),
            "delete": ADMIN,
        },
        conflict={
            "create": f"The email address is in use (ignoring case), {_RUNNING}",
            "update": "The email address is in use (ignoring case), the last admin would "
            f"lose its role, {_RUNNING}",
            "delete": f"The user is the last admin, {_RUNNING}",
        },
        read_headers=("Vary",),
    )
)


def shown_to(caller, user):
    """``emailAddress`` only for an admin or the user itself."""
    if caller and (caller.role == "admin" or caller.user_id == user["id"]):
        return user
    return {key: value for key, value in user.items() if key != "emailAddress"}


class UsersRoutes:
    # Reads are cached for anonymous callers only: with a token, the answer
    # may carry an email address (per_caller, see gateway.cache).

    @http("GET", "/api/users", cached="users", per_caller=True, doc=DOCS["list"])
    def list_users(self, request):
        caller = self.auth.caller(request, required=False)
        params = list_params(request)
        page = self.users_rpc.list(**params)
        return page_response(request, page, params, [shown_to(caller, u) for u in page["items"]])

    @http("GET", "/api/users/<user_id>", cached="users", per_caller=True, doc=DOCS["get"])
    def get_user(self, request, user_id):
        caller = self.auth.caller(request, required=False)
        return json_response(shown_to(caller, self.users_rpc.get(user_id)))

    @http("POST", "/api/users", changes="users", doc=DOCS["create"])
    def create_user(self, request):
        caller, body = self.auth.admin(request), read_json(request)
        user = self.users_rpc.create(body, request_key=self.request_keys.of(request, caller, body))
        return json_response(user, 201, {"Location": f"/api/users/{user['id']}"})

    @http("PUT", "/api/users/<user_id>", changes="users", doc=DOCS["update"])
    def update_user(self, request, user_id):
        caller = self.auth.caller(request)
        body = read_json(request)
        if caller.role != "admin":
            if caller.user_id != user_id:
                raise Forbidden("Only an admin or the user itself may change a user.")
            if "role" in body:
                raise Forbidden("Only an admin may change a role.")
        user = self.users_rpc.update(
            user_id, body, request_key=self.request_keys.of(request, caller, body)
        )
        return json_response(user)

    @http("DELETE", "/api/users/<user_id>", changes="users", doc=DOCS["delete"])
    def delete_user(self, request, user_id):
        caller = self.auth.admin(request)
        user = self.users_rpc.delete(user_id, request_key=self.request_keys.of(request, caller))
        return json_response(user)
