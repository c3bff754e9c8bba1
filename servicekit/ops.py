"""The operations port of a service process: metrics and probes.

With ``OPS_PORT`` set (0, the default, turns it off), every service process,
the gateway's too, answers on that port, on every interface:

- ``GET /metrics``: Prometheus' text format (:mod:`servicekit.metrics`);
- ``GET /livez``: 200 while the process runs (its event loop answers);
- ``GET /readyz``: 200 once the service has started, the broker accepts a
  connection, each of its databases answers and no dependency says it
  still waits (``waits_for()``: a reason, or ``""``); 503 with the reason
  else.

A service's ``health`` RPC is answered by any copy of it, through the
broker; these answer for this process, which is what a probe needs.
"""

import logging

import eventlet
from eventlet import wsgi
from kombu import Connection
from nameko.extensions import DependencyProvider
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from .database_errors import diagnose
from .db import DatabaseEngine

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0


class OpsPort(DependencyProvider):
    """Declared by :class:`servicekit.base.ServiceBase`; nothing to use in a worker."""

    def setup(self):
        self.port = int(self.container.config.get("OPS_PORT") or 0)
        self._server = None

    def start(self):
        if not self.port:
            return
        sock = eventlet.listen(("0.0.0.0", self.port))
        self._server = self.container.spawn_managed_thread(
            lambda: wsgi.server(sock, self._app, log_output=False, debug=False)
        )
        log.info("metrics and probes on port %d", self.port)

    def stop(self):
        if self._server is not None:
            self._server.kill()

    kill = stop

    def _app(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return _answer(start_response, "200 OK", generate_latest(), CONTENT_TYPE_LATEST)
        if path == "/livez":
            return _answer(start_response, "200 OK", b"ok\n")
        if path == "/readyz":
            problem = self.not_ready()
            if problem:
                return _answer(start_response, "503 Service Unavailable", problem.encode() + b"\n")
            return _answer(start_response, "200 OK", b"ready\n")
        return _answer(start_response, "404 Not Found", b"metrics, livez, readyz\n")

    def not_ready(self):
        """Why this process should not get traffic yet, or ``""``."""
        if not self.container.started:
            return "starting"
        for dependency in self.container.dependencies:
            # A dependency may say what it still waits for (the gateway's
            # authenticator: the revoked tokens).
            waiting = getattr(dependency, "waits_for", None)
            reason = waiting() if callable(waiting) else ""
            if reason:
                return f"not ready: {reason}"
        try:
            amqp_uri = self.container.config["AMQP_URI"]
            with (
                eventlet.Timeout(CHECK_TIMEOUT_SECONDS),
                Connection(amqp_uri, connect_timeout=2) as conn,
            ):
                conn.ensure_connection(max_retries=1)
        except (Exception, eventlet.Timeout) as exc:
            return f"not ready: the broker: {type(exc).__name__}: {exc}"
        try:
            with eventlet.Timeout(CHECK_TIMEOUT_SECONDS):
                for engine in self._engines():
                    with engine.connect() as connection:
                        connection.execute(text("SELECT 1"))
        except eventlet.Timeout:
            return f"not ready: the database did not answer in {CHECK_TIMEOUT_SECONDS:g} s"
        except Exception as exc:
            problem = diagnose(exc)  # not running, refused the login, missing
            return f"not ready: the database: {problem.kind}: {problem.detail}"
        return ""

    def _engines(self):
        return [
            ext.engine for ext in self.container.subextensions if isinstance(ext, DatabaseEngine)
        ]


def _answer(start_response, status, body, content_type="text/plain; charset=utf-8"):
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
