"""The login route."""

from .errors import json_response
from .http import http
from .requests import read_json


class LoginRoutes:
    @http("POST", "/api/auth")
    def login(self, request):
        body = read_json(request)
        result = self.auth_rpc.login(
            body.get("emailAddress"), body.get("password"), client=request.remote_addr
        )
        return json_response(result)
