"""The gateway's HTTP layer on nameko's ``@http``: JSON errors everywhere.

nameko answers unknown routes, wrong methods and failed handlers with plain
text; here every answer, including those raised before a worker exists, goes
through :func:`gateway.errors.error_response`. The WSGI app also enforces the
1 MiB body limit, accepts a trailing slash on every route and gives each
request a correlation id (``X-Request-Id``).
"""

import re

from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Request

from servicekit.errors import ServiceError
from servicekit.logs import CONTEXT_KEY, new_correlation_id

from .errors import error_response

MAX_BODY_BYTES = 1024 * 1024
REQUEST_ID_HEADER = "X-Request-Id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class GatewayRequest(Request):
    # Reading a larger body raises 413, also for chunked uploads.
    max_content_length = MAX_BODY_BYTES


class GatewayWsgiApp(WsgiApp):
    def __call__(self, environ, start_response):
        request_id = environ.get("HTTP_X_REQUEST_ID", "")
        if not _SAFE_REQUEST_ID.match(request_id):
            request_id = new_correlation_id()
        environ["HTTP_X_REQUEST_ID"] = request_id
        path = environ.get("PATH_INFO") or "/"
        if len(path) > 1 and path.endswith("/"):
            environ["PATH_INFO"] = path.rstrip("/") or "/"

        request = GatewayRequest(environ, shallow=True)
        try:
            if (request.content_length or 0) > MAX_BODY_BYTES:
                raise RequestEntityTooLarge()
            provider, values = self.url_map.bind_to_environ(environ).match()
            request.path_values = values
            response = provider.handle_request(request)
        except HTTPException as exc:
            response = error_response(exc)
        response.headers[REQUEST_ID_HEADER] = request_id
        return response(environ, start_response)


class GatewayServer(WebServer):
    def get_wsgi_app(self):
        return GatewayWsgiApp(self)

    def context_data_from_headers(self, request):
        # Travels with every RPC and event this request causes.
        return {CONTEXT_KEY: request.headers[REQUEST_ID_HEADER]}


class JsonHttpHandler(HttpRequestHandler):
    server = GatewayServer()

    def __init__(self, method, url, **kwargs):
        # Client errors are answers, not failures: logged without traceback.
        kwargs.setdefault("expected_exceptions", (ServiceError, HTTPException))
        super().__init__(method, url, **kwargs)

    def response_from_exception(self, exc):
        return error_response(exc)


http = JsonHttpHandler.decorator
