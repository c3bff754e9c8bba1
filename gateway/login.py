"""The login route."""

from auth.schemas import LoginSchema
from servicekit.errors import ValidationError

from .apidoc import BODY_ERRORS, LOGIN_FAILURE, SERVICE_ERRORS, Answer, Doc, Schema, View
from .errors import json_response
from .http import http
from .requests import read_json

LOGIN_FIELDS = ("emailAddress", "password")

LOGIN_RESULT = Schema(
    "LoginResult",
    {
        "type": "object",
        "properties": {
            "auth": {"type": "boolean", "enum": [True]},
            "token": {
                "type": "string",
                "description": "A JWT for `Authorization: Bearer <token>`.",
            },
            "expiresIn": {
                "type": "integer",
                "minimum": 1,
                "description": "Seconds the token is valid.",
            },
        },
        "required": ["auth", "token", "expiresIn"],
    },
)
LOGIN = View(
    "Login",
    LoginSchema,
    "Credentials. Any text is taken as `emailAddress`: a wrong one fails like a wrong "
    "password. Unknown fields are a 422.",
)


class LoginRoutes:
    @http(
        "POST",
        "/api/auth",
        doc=Doc(
            "Log in",
            "Auth",
            {
                200: Answer("A token.", LOGIN_RESULT),
                401: Answer("Wrong email address or password.", LOGIN_FAILURE),
            },
            (*BODY_ERRORS, 429, *SERVICE_ERRORS),
            body=LOGIN,
            description="Failed logins within 15 minutes block further tries for a while "
            "(429): five for one account from one address block that account from that "
            "address only; twenty from one address block that address; a hundred for one "
            "account, from any addresses, block that account everywhere.",
        ),
    )
    def login(self, request):
        body = read_json(request)
        unknown = sorted(set(body) - set(LOGIN_FIELDS))
        if unknown:
            details = {name: ["Unknown field."] for name in unknown}
            raise ValidationError("The request has invalid fields.", details)
        result = self.auth_rpc.login(
            body.get("emailAddress"), body.get("password"), client=request.remote_addr
        )
        return json_response(result)
