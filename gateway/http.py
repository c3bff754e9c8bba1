"""The gateway's HTTP layer on nameko's ``@http``: JSON errors, cached reads.

nameko answers unknown routes, wrong methods and failed handlers with plain
text; here every answer, including those made before a worker exists, goes
through :func:`gateway.errors.error_response`. The WSGI app also enforces the
1 MiB body limit, accepts a trailing slash on every route, gives each request
a correlation id (``X-Request-Id``) and the usual security headers
(:mod:`gateway.headers`).

A route says what it is to the read cache (:mod:`gateway.cache`):

- ``@http("GET", "/api/articles/<article_id>", cached="articles")``: a public
  read of articles; its answers are kept and served from the cache;
- ``@http("PUT", "/api/articles/<article_id>", changes="articles")``: a write
  of articles: once it succeeded, the cache drops what it made stale, before
  the client has the answer.

Every other GET answer gets an ``ETag``; ``If-None-Match`` with it is a 304.
"""

import logging
from functools import partial

from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from servicekit.errors import ServiceError
from servicekit.logs import CONTEXT_KEY, HTTP_CONNECTION

from .cache import NOT_STORED, ReadCache
from .cors import Cors
from .errors import error_response
from .fastpath import CachedReadProtocol
from .headers import READ_METHODS, REQUEST_ID_HEADER, SECURITY_HEADERS, Head

MAX_BODY_BYTES = 1024 * 1024


class GatewayRequest(Request):
    # Reading a larger body raises 413, also for chunked uploads.
    max_content_length = MAX_BODY_BYTES


class GatewayWsgiApp(WsgiApp):
    def __init__(self, server):
        super().__init__(server)
        self.reads = server.read_cache
        self.cors = Cors(server.container.config.get("CORS_ORIGINS"))

    def per_request_headers(self, head):
        """The headers of this request's answer alone, on either path."""
        return [(REQUEST_ID_HEADER, head.request_id), *self.cors.headers(head.origin)]

    def cached_answer(self, head):
        """A read cache hit for ``head`` and its per-request headers, or
        ``None``: what the fast path and this app serve without routing."""
        hit = self.reads.answer(head)
        return None if hit is None else (hit, self.per_request_headers(head))

    def __call__(self, environ, start_response):
        head = Head.of(environ)
        environ["PATH_INFO"] = head.path  # a trailing slash is accepted everywhere
        # The fast path looked this request up already (a miss) when it says so.
        found = None if environ.get("localnews.cache_missed") else self.cached_answer(head)
        if found is not None:
            hit, extra = found
            start_response(hit.status, [*hit.headers, *extra])
            return [hit.body]
        response = self.answer(head, environ)
        headers = response.headers
        headers.setdefault("Cache-Control", NOT_STORED)
        for name, value in SECURITY_HEADERS:  # a route may set its own (the docs page)
            headers.setdefault(name, value)
        for name, value in self.per_request_headers(head):
            if name == "Vary":
                headers.add(name, value)  # next to the route's own Vary
            else:
                headers[name] = value
        return response(environ, start_response)

    def answer(self, head, environ):
        """The route's answer (through the read cache for a cached read, and
        dropping what a successful write changed), or the error's."""
        preflight = self.cors.preflight(environ)
        if preflight is not None:
            return Response(status=204, headers=preflight)
        request = GatewayRequest(environ, shallow=True)
        try:
            if (request.content_length or 0) > MAX_BODY_BYTES:
                raise RequestEntityTooLarge()
            route, values = self.url_map.bind_to_environ(environ).match()
            request.path_values = values
            item_id = next(iter(values.values()), None)
            if head.method in READ_METHODS and route.cached:
                call = partial(route.handle_request, request)
                return self.reads.fill(head, route, call, item_id)
            response = route.handle_request(request)
            if head.method in READ_METHODS:
                return self.reads.conditional(head, response)
            if route.changes and response.status_code < 300:
                self.reads.changed(route.changes, item_id)  # read your own writes
            return response
        except HTTPException as exc:
            return error_response(exc)


class GatewayServer(WebServer):
    read_cache = ReadCache()

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
    caller (only anonymous requests are cached), ``changes="articles"`` a
    write of that resource; ``doc``, how the OpenAPI document describes it."""

    server = GatewayServer()

    def __init__(
        self, method, url, cached=None, per_caller=False, changes=None, doc=None, **kwargs
    ):
        # Client errors are answers, not failures: logged without traceback.
        kwargs.setdefault("expected_exceptions", (ServiceError, HTTPException))
        super().__init__(method, url, **kwargs)
        self.cached = cached
        self.per_caller = per_caller
        self.changes = changes
        self.doc = doc  # its part of the OpenAPI document (gateway.apidoc.Doc)

    def response_from_exception(self, exc):
        return error_response(exc)


http = JsonHttpHandler.decorator
