"""The gateway's HTTP layer on nameko's ``@http``: JSON errors, cached reads.

nameko answers unknown routes, wrong methods and failed handlers with plain
text; here every answer, including those made before a worker exists, goes
through :func:`gateway.errors.error_response`. The WSGI app also enforces the
1 MiB body limit, accepts a trailing slash on every route, gives each request
a correlation id (``X-Request-Id``) and the usual security headers.

Reads: a route declared with ``cached="articles"`` is a public read of that
resource. Its 200 answers get an ``ETag`` and go into the read cache
(:mod:`gateway.cache`); a later request for the same URL is answered from the
cache right here, before routing and before a nameko worker is spawned (the
worker machinery costs more than the rest of a hit). Every GET answer gets an
``ETag``, and ``If-None-Match`` with it is a ``304``.
"""

import logging
import re
from functools import partial

from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from servicekit.errors import ServiceError
from servicekit.logs import CONTEXT_KEY, HTTP_CONNECTION, new_correlation_id

from .cache import (
    ANONYMOUS,
    PRIVATE,
    PUBLIC,
    CachedAnswer,
    CacheStore,
    cache_key,
    etag_matches,
    etag_of,
    group_of,
    not_modified_headers,
)
from .cors import Cors
from .errors import error_response
from .fastpath import CachedReadProtocol

MAX_BODY_BYTES = 1024 * 1024
REQUEST_ID_HEADER = "X-Request-Id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
READ_METHODS = ("GET", "HEAD")

# On every answer. A JSON API is never a page to render, frame or sniff.
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
]
# Other GET answers may be kept if revalidated; writes and errors are not kept.
REVALIDATE = "no-cache"
NOT_STORED = "no-store"


class GatewayRequest(Request):
    # Reading a larger body raises 413, also for chunked uploads.
    max_content_length = MAX_BODY_BYTES


def _cache_key(environ):
    return cache_key(environ["PATH_INFO"], environ.get("QUERY_STRING", ""))


def serve_cached(answer, environ, start_response, extra_headers):
    """A hit: the stored bytes, or 304; no routing, no worker."""
    if etag_matches(environ.get("HTTP_IF_NONE_MATCH"), answer.etag):
        start_response("304 Not Modified", [*answer.not_modified_headers, *extra_headers])
        return []
    start_response("200 OK", [*answer.headers, *extra_headers])
    return [answer.body]


def conditional(response, environ):
    """A 200 GET answer with its ``ETag``, or a 304 when the client has it."""
    etag = response.headers.setdefault("ETag", etag_of(response.get_data()))
    if etag_matches(environ.get("HTTP_IF_NONE_MATCH"), etag):
        return Response(status=304, headers=not_modified_headers(response.headers.items()))
    return response


class GatewayWsgiApp(WsgiApp):
    def __init__(self, server):
        super().__init__(server)
        self.cache = server.read_cache
        self.cors = Cors(server.container.config.get("CORS_ORIGINS"))

    def __call__(self, environ, start_response):
        request_id = environ.get("HTTP_X_REQUEST_ID", "")
        if not _SAFE_REQUEST_ID.match(request_id):
            request_id = environ["HTTP_X_REQUEST_ID"] = new_correlation_id()
        path = environ.get("PATH_INFO") or "/"
        if len(path) > 1 and path.endswith("/"):  # a trailing slash is accepted everywhere
            environ["PATH_INFO"] = path.rstrip("/") or "/"

        per_request = [(REQUEST_ID_HEADER, request_id), *self.cors.headers(environ)]
        if environ["REQUEST_METHOD"] in READ_METHODS:
            answer = self.cache.lookup(_cache_key(environ), "HTTP_AUTHORIZATION" in environ)
            if answer is not None:
                return serve_cached(answer, environ, start_response, per_request)
        preflight = self.cors.preflight(environ)
        if preflight is not None:
            start_response("204 No Content", [*preflight, (REQUEST_ID_HEADER, request_id)])
            return []

        request = GatewayRequest(environ, shallow=True)
        try:
            if (request.content_length or 0) > MAX_BODY_BYTES:
                raise RequestEntityTooLarge()
            provider, values = self.url_map.bind_to_environ(environ).match()
            request.path_values = values
            if request.method not in READ_METHODS:
                response = provider.handle_request(request)
            elif provider.cached:
                response = self.cacheable_read(provider, request, environ)
            else:
                response = provider.handle_request(request)
                if response.status_code == 200 and not response.is_streamed:
                    response.headers.setdefault("Cache-Control", REVALIDATE)
                    response = conditional(response, environ)
        except HTTPException as exc:
            response = error_response(exc)
        headers = response.headers
        headers.setdefault("Cache-Control", NOT_STORED)
        for name, value in SECURITY_HEADERS:  # a route may set its own (the docs page)
            headers.setdefault(name, value)
        for name, value in per_request:
            if name == "Vary":
                headers.add(name, value)  # next to the route's own Vary
            else:
                headers[name] = value
        return response(environ, start_response)

    def cacheable_read(self, provider, request, environ):
        """A miss: the worker's answer, stored unless its resource changed
        meanwhile or it depends on who asked."""
        resource = provider.cached
        anonymous = "HTTP_AUTHORIZATION" not in environ
        generation = self.cache.generation(resource)
        self.cache.misses += 1
        response = provider.handle_request(request)
        if response.status_code != 200:
            return response
        headers = response.headers
        if provider.per_caller:
            headers["Cache-Control"] = ANONYMOUS if anonymous else PRIVATE
            headers["Vary"] = "Authorization"
        else:
            headers["Cache-Control"] = PUBLIC
        body = response.get_data()
        headers["ETag"] = etag_of(body)
        if self.cache.enabled and (anonymous or not provider.per_caller):
            stored = [*headers.items(), *SECURITY_HEADERS, ("X-Cache", "hit")]
            item_id = next(iter(request.path_values.values()), None)
            answer = CachedAnswer(
                body, headers["ETag"], stored, provider.per_caller, group_of(resource, item_id)
            )
            self.cache.store(_cache_key(environ), answer, generation)
        headers["X-Cache"] = "miss"
        return conditional(response, environ)


class GatewayServer(WebServer):
    read_cache = CacheStore()

    def run(self):
        # nameko's loop, with each connection's thread named for the logs.
        while self._is_accepting:
            sock, address = self._sock.accept()
            sock.settimeout(self._serv.socket_timeout)
            self.container.spawn_managed_thread(
                partial(self.process_request, sock, address), identifier=HTTP_CONNECTION
            )

    def get_wsgi_app(self):
        return GatewayWsgiApp(self)

    def get_wsgi_server(self, sock, wsgi_app, protocol=CachedReadProtocol, **kwargs):
        server = super().get_wsgi_server(sock, wsgi_app, protocol=protocol, **kwargs)
        # eventlet formats an access-log line for every request before the
        # logger's level is checked: only do it when the line will be shown.
        server.log_output = server.log.isEnabledFor(logging.INFO)
        return server

    def context_data_from_headers(self, request):
        # Travels with every RPC and event this request causes.
        return {CONTEXT_KEY: request.headers[REQUEST_ID_HEADER]}


class JsonHttpHandler(HttpRequestHandler):
    """nameko's ``@http`` with JSON errors; ``cached="articles"`` marks a public
    read of that resource, ``per_caller=True`` one whose answer depends on the
    caller (only anonymous requests are cached)."""

    server = GatewayServer()

    def __init__(self, method, url, cached=None, per_caller=False, **kwargs):
        # Client errors are answers, not failures: logged without traceback.
        kwargs.setdefault("expected_exceptions", (ServiceError, HTTPException))
        super().__init__(method, url, **kwargs)
        self.cached = cached
        self.per_caller = per_caller

    def response_from_exception(self, exc):
        return error_response(exc)


http = JsonHttpHandler.decorator
