"""The gateway's HTTP layer on nameko's ``@http``: JSON errors, cached reads.

nameko answers unknown routes, wrong methods and failed handlers with plain
text; here every answer, including those made before a worker exists, goes
through :func:`gateway.errors.error_response`. Requests are read by the
gateway's own server (:mod:`gateway.server`: strict HTTP/1.1, limits, read
cache hits); the WSGI app accepts a trailing slash on every route, gives each
request a correlation id (``X-Request-Id``) and the usual security headers
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
import time
from functools import partial

import eventlet
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from servicekit.entrypoints import SignatureOnce
from servicekit.errors import ServiceError
from servicekit.logs import CONTEXT_KEY, HTTP_CONNECTION
from servicekit.metrics import REPORTED

from . import server
from .cache import NOT_STORED, ReadCache
from .cors import Cors
from .errors import error_response
from .headers import READ_METHODS, REQUEST_ID_HEADER, SECURITY_HEADERS, Head


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
        head = environ.get(server.HEAD) or Head.of(
            environ
        )  # the server's reading, when it made one
        environ["PATH_INFO"] = head.path  # a trailing slash is accepted everywhere
        # The server asked the read cache before (gateway.server): a miss.
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
        request = Request(environ, shallow=True)
        try:
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


# On /metrics: connections are the server's, before any worker.
HTTP_METRICS = REPORTED.kind(
    "http",
    counters={"refused": "Connections refused at GATEWAY_MAX_CONNECTIONS (503)."},
    gauges={"connections": "Client connections open."},
)


class GatewayServer(WebServer):
    """nameko's ``WebServer`` on the gateway's own HTTP/1.1 server
    (:mod:`gateway.server`): one strict reading of every request, hits
    answered before any WSGI call, connections capped and timed out."""

    read_cache = ReadCache()

    def setup(self):
        config = self.container.config
        self.limits = {
            key: float(config.get(key) or default) for key, default in server.DEFAULTS.items()
        }
        self.connections = {}  # Connection -> when accepted
        self.refused = 0
        HTTP_METRICS.watch(self)

    def start(self):
        if self._starting:
            return
        self._starting = True
        self.capacity = server.max_connections(self.container.config)  # after every setup
        self._sock = eventlet.listen(self.bind_addr)
        self._sock.settimeout(None)
        self.app = self.get_wsgi_app()
        self.read_cache.learn(self._providers)
        self.access_log = server.log.isEnabledFor(logging.INFO)
        acceptor = server.Acceptor(self)
        spawn = partial(self.container.spawn_managed_thread, identifier=HTTP_CONNECTION)
        self._gt = self.container.spawn_managed_thread(lambda: acceptor.run(self._sock, spawn))
        interval = server.reap_interval(self.limits)
        self.container.spawn_managed_thread(lambda: server.reap(self.connections, interval))

    def full(self):
        if len(self.connections) < self.capacity:
            return False
        self.refused += 1
        return True

    def opened(self, sock, address):
        connection = server.Connection(self, sock, address)
        self.connections[connection] = time.monotonic()
        return connection

    def closed(self, connection):
        self.connections.pop(connection, None)

    def access(self, connection, incoming, status, size, started):
        if self.access_log:
            server.log.info(
                '%s "%s %s HTTP/%s" %s %d %.6f', connection.address[0], incoming.method,
                incoming.target.decode("latin-1"), incoming.version, status, size,
                time.monotonic() - started,
            )  # fmt: skip

    def stats(self):
        return {"connections": len(self.connections), "refused": self.refused}

    def get_wsgi_app(self):
        return GatewayWsgiApp(self)

    def context_data_from_headers(self, request):
        # Travels with every RPC and event this request causes.
        return {CONTEXT_KEY: request.headers[REQUEST_ID_HEADER]}


class JsonHttpHandler(SignatureOnce, HttpRequestHandler):
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
