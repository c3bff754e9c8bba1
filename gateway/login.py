"""The login route."""

from servicekit.errors import ValidationError

from .errors import json_response
from .http import http
from .requests import read_json

LOGIN_FIELDS = ("emailAddress", "password")


class LoginRoutes:
    @http("POST", "/api/auth")
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
