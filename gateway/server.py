"""The gateway's HTTP/1.1 server: every request read once, strictly.

Every byte a client sends is read by llhttp (``httptools``: the parser of
Node.js and uvicorn) in its strict mode, and that one reading serves both
ways a request is answered: from the read cache (a hit: its stored bytes are
written at once, before any WSGI or nameko machinery runs) and by the WSGI
app (a route, a nameko worker). What RFC 9112 says to reject is a JSON 400
with the connection closed: a bare CR or LF, ``Content-Length`` twice, signed
or next to ``Transfer-Encoding``, a transfer coding other than a final
``chunked``, whitespace before a colon, characters that are not allowed in a
name or a value, obs-fold, an HTTP/1.1 request without exactly one ``Host``.
The same bytes never get two readings, which request smuggling needs.

Connections are bounded, so no number of them stops the gateway:

- at most ``GATEWAY_MAX_CONNECTIONS`` a process (by default the open-files
  limit less a margin); beyond, a connection gets a 503 and is closed;
- a full file table (EMFILE, ENFILE) pauses accepting, said once, and the
  server goes on;
- a request's head must have arrived ``GATEWAY_HEAD_TIMEOUT_SECONDS`` (10)
  after its first byte (a new connection's, after it opened): else 408 and
  closed (a client sending a byte a second holds nothing for long); its
  body, ``GATEWAY_BODY_TIMEOUT_SECONDS`` (30) after the head;
- a keep-alive connection idle for ``GATEWAY_IDLE_TIMEOUT_SECONDS`` (75) is
  closed; a client that does not read its answer for 30 s is let go;
- a request line over 8 KiB is a 414, a head over 64 KiB or 100 headers a
  431, a body over 1 MiB a 413.

The timeouts are kept by one green thread (:func:`reap`), a few times a
second (at most a second late), not by a timer on every read.

A streamed answer (the live feed) learns that its client left as soon as
the socket closes: the app registers what to do through
``environ["localnews.on_client_gone"]``.
"""

import contextlib
import errno
import io
import json
import logging
import resource
import socket
import sys
import time
from collections import deque
from email.utils import formatdate
from urllib.parse import unquote_to_bytes

import eventlet
import httptools

from servicekit.logs import Trouble, new_correlation_id

from .cache import encoded
from .headers import SECURITY_HEADERS, Head, request_id

log = logging.getLogger("nameko.web.server")  # nameko's access log, as before

MAX_TARGET_BYTES = 8 * 1024
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
MAX_BODY_BYTES = 1024 * 1024
DEFAULTS = {
    "GATEWAY_HEAD_TIMEOUT_SECONDS": 10.0,
    "GATEWAY_BODY_TIMEOUT_SECONDS": 30.0,
    "GATEWAY_IDLE_TIMEOUT_SECONDS": 75.0,
}
SEND_TIMEOUT_SECONDS = 30.0
# Kept free under the open-files limit: the broker's connections, log files,
# the database (none in the gateway, but a margin costs nothing).
SPARE_DESCRIPTORS = 128
RECV_BYTES = 65536
# Where the app registers what to do when a streamed answer's client leaves.
CLIENT_GONE = "localnews.on_client_gone"
# Where the app finds this server's reading of the request's head.
HEAD = "localnews.head"
# Reasons of the statuses this server answers itself, and of the WSGI app's.
REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Payload Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


class Refused(Exception):
    """A request this server answers itself, and then closes the connection."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def max_connections(config):
    """``GATEWAY_MAX_CONNECTIONS``, or what fits under the open-files limit."""
    configured = int(config.get("GATEWAY_MAX_CONNECTIONS") or 0)
    if configured > 0:
        return configured
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = 1_000_000 if soft == resource.RLIM_INFINITY else soft
    return max(32, limit - SPARE_DESCRIPTORS)


class Incoming:
    """One request as the parser read it."""

    __slots__ = (
        "body", "count", "expect_continue", "fields", "head_bytes", "head_done",
        "head_done_at", "keep_alive", "method", "started", "target", "version",
    )  # fmt: skip

    def __init__(self):
        self.target = b""
        # lower-case name -> value, as bytes; a repeated field's values
        # joined by commas (RFC 9110, 5.3), as WSGI wants them.
        self.fields = {}
        self.count = 0  # header fields, repeats included
        self.head_bytes = 0
        self.head_done = False
        self.head_done_at = None
        self.body = bytearray()
        self.started = time.monotonic()
        self.method = self.version = None
        self.keep_alive = False
        self.expect_continue = False


class RequestReader:
    """llhttp's callbacks for one connection: complete requests, in order."""

    def __init__(self):
        self.parser = httptools.HttpRequestParser(self)
        self.current = None
        self.done = deque()

    # The callbacks (llhttp calls them while ``feed`` runs).

    def on_message_begin(self):
        self.current = Incoming()

    def on_url(self, url):
        self.current.target += url
        if len(self.current.target) > MAX_TARGET_BYTES:
            raise Refused(414, "URI_TOO_LONG", "The request line is longer than 8 KiB.")

    def on_header(self, name, value):
        request = self.current
        request.head_bytes += len(name) + len(value) + 4
        request.count += 1
        if request.head_bytes > MAX_HEAD_BYTES or request.count > MAX_HEADERS:
            raise Refused(
                431,
                "HEADERS_TOO_LARGE",
                f"The request's headers are over 64 KiB or {MAX_HEADERS} fields.",
            )
        name, value = name.lower(), value.strip(b" \t")
        fields = request.fields
        if name not in fields:
            fields[name] = value
        elif name == b"host":
            raise Refused(400, "BAD_REQUEST", "An HTTP/1.1 request needs exactly one Host header.")
        else:
            fields[name] += b", " + value

    def on_headers_complete(self):
        request, parser = self.current, self.parser
        request.head_done, request.head_done_at = True, time.monotonic()
        request.method = parser.get_method().decode("ascii")
        request.version = parser.get_http_version()
        request.keep_alive = parser.should_keep_alive()
        fields = request.fields
        if request.version == "1.1" and b"host" not in fields:
            raise Refused(400, "BAD_REQUEST", "An HTTP/1.1 request needs exactly one Host header.")
        # llhttp has checked Content-Length's form (digits, and once).
        length = fields.get(b"content-length")
        if length is not None and int(length) > MAX_BODY_BYTES:
            raise Refused(413, "PAYLOAD_TOO_LARGE", "The request body is larger than 1 MiB.")
        request.expect_continue = fields.get(b"expect", b"").lower() == b"100-continue"

    def on_body(self, body):
        request = self.current
        request.body += body
        if len(request.body) > MAX_BODY_BYTES:
            raise Refused(413, "PAYLOAD_TOO_LARGE", "The request body is larger than 1 MiB.")

    def on_message_complete(self):
        self.done.append(self.current)
        self.current = None

    def feed(self, data):
        """Read ``data``; a request this server refuses raises :class:`Refused`."""
        try:
            self.parser.feed_data(data)
        except Refused:
            raise
        except httptools.HttpParserUpgrade:
            # An Upgrade (or HTTP/2's preface) this server does not take:
            # the request is answered as it is, and the connection closed.
            if self.current is not None and not self.current.head_done:
                raise Refused(400, "BAD_REQUEST", "Not an HTTP/1.1 request.") from None
            if self.done:
                self.done[-1].keep_alive = False
        except httptools.HttpParserError as exc:
            cause = exc.__context__ if isinstance(exc.__context__, Refused) else None
            if cause is not None:
                raise cause from None
            raise Refused(400, "BAD_REQUEST", f"Malformed HTTP request: {exc}.") from None


def error_bytes(status, code, message, extra=()):
    """A whole answer of the error JSON, closing the connection."""
    body = json.dumps({"error": code, "message": message, "details": {}}).encode()
    headers = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        *SECURITY_HEADERS,
        ("X-Request-Id", new_correlation_id()),
        *extra,
        ("Date", http_date()),
        ("Connection", "close"),
    ]
    return f"HTTP/1.1 {status} {REASONS[status]}\r\n".encode() + encoded(headers) + b"\r\n" + body


_date = [0, ""]


def http_date():
    now = int(time.time())
    if now != _date[0]:
        _date[:] = [now, formatdate(now, usegmt=True)]
    return _date[1]


class Connection:
    """One client's connection: its requests read and answered in order."""

    def __init__(self, server, sock, address):
        self.server = server
        self.sock = sock
        self.address = address
        self.reader = RequestReader()
        self.waiting_since = time.monotonic()  # accepted, or the last answer written
        self.answered = 0
        # The wait in progress (a read, a write) ends at ``deadline``, by
        # :func:`reap`: a timer for every recv cost more than a hit's answer.
        self.deadline = None
        self.late = False  # whether a request is in progress: 408 at the deadline
        self.expired = False

    def serve(self):
        self.sock.settimeout(None)
        try:
            while True:
                while self.reader.done:
                    if not self.answer(self.reader.done.popleft()):
                        return
                    self.answered += 1
                    self.waiting_since = time.monotonic()
                data = self.receive()
                if not data:
                    return
                try:
                    self.reader.feed(data)
                except Refused as refused:
                    self.send(error_bytes(refused.status, refused.code, refused.message))
                    return
                current = self.reader.current
                if current is not None and current.head_done and current.expect_continue:
                    current.expect_continue = False
                    self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        except (OSError, eventlet.Timeout):
            return  # the client left, or would not take its answer
        finally:
            self.server.closed(self)
            self.sock.close()

    def receive(self):
        """The next bytes, within the time the request in progress may take:
        its head, its body, or (between requests) the next one's first byte."""
        limits, current = self.server.limits, self.reader.current
        if current is None:
            first = self.answered == 0
            wait = limits[
                "GATEWAY_HEAD_TIMEOUT_SECONDS" if first else "GATEWAY_IDLE_TIMEOUT_SECONDS"
            ]
            deadline, late = self.waiting_since + wait, False  # nothing asked: just close
        elif not current.head_done:
            deadline, late = current.started + limits["GATEWAY_HEAD_TIMEOUT_SECONDS"], True
        else:
            deadline, late = current.head_done_at + limits["GATEWAY_BODY_TIMEOUT_SECONDS"], True
        self.deadline, self.late = deadline, late
        try:
            data = self.sock.recv(RECV_BYTES)
        finally:
            self.deadline = None
        return b"" if self.expired else data

    def send(self, data):
        self.deadline, self.late = time.monotonic() + SEND_TIMEOUT_SECONDS, False
        try:
            self.sock.sendall(data)
        finally:
            self.deadline = None

    def expire(self):
        """The wait in progress is over: a request that did not arrive in
        time gets a 408; shutting the socket down ends the wait."""
        self.expired = True
        if self.late:
            message = "The request did not arrive in time."
            with contextlib.suppress(OSError):
                # Without waiting (the reaper serves every connection): the
                # few bytes fit in the socket's buffer, or the client is gone.
                self.sock.fd.send(error_bytes(408, "REQUEST_TIMEOUT", message))
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def answer(self, incoming):
        """Answer one request; whether the connection may serve another."""
        started = time.monotonic()
        path, query = split_target(incoming.target)
        value = incoming.fields.get
        head = Head(
            incoming.method,
            path,
            query,
            value(b"authorization"),
            _text(value(b"if-none-match")),
            request_id(_text(value(b"x-request-id"))),
            _text(value(b"origin")),
        )
        keep_alive = incoming.keep_alive
        found = self.server.app.cached_answer(head)
        if found is not None:
            hit, extra = found
            parts = [b"HTTP/1.1 ", hit.status.encode(), b"\r\n", hit.head, encoded(extra)]
            parts += [b"Date: ", http_date().encode(), b"\r\n"]
            parts.append(_connection_header(incoming, keep_alive))
            parts += [b"\r\n", hit.body]
            self.send(b"".join(parts))
            self.server.access(self, incoming, hit.status[:3], len(hit.body), started)
            return keep_alive
        return self.run_app(incoming, head, path, query, keep_alive, started)

    def run_app(self, incoming, head, path, query, keep_alive, started):
        gone = []
        environ = self.environ(incoming, head, path, query, gone)
        answer = []

        def start_response(status, headers, exc_info=None):
            answer[:] = [status, headers]

        body = self.server.app(environ, start_response)
        watcher = None
        sent = 0
        try:
            status, headers = answer
            code = int(status[:3])
            names = {name.lower() for name, _ in headers}
            bodiless = incoming.method == "HEAD" or code in (204, 304) or code < 200
            chunked = not bodiless and "content-length" not in names
            if chunked and incoming.version == "1.0":
                chunked, keep_alive = False, False  # the end of the body is the close
            headers = [*headers, ("Date", http_date())]
            if chunked:
                headers.append(("Transfer-Encoding", "chunked"))
            head_bytes = f"HTTP/1.1 {status}\r\n".encode("latin-1") + encoded(headers)
            pending = head_bytes + _connection_header(incoming, keep_alive) + b"\r\n"
            if chunked:  # a stream: its head leaves at once; it ends when its client leaves
                self.send(pending)
                pending = b""
                watcher = eventlet.spawn(self._watch_for_close, gone)
            for chunk in body:
                if bodiless or not chunk:
                    continue
                sent += len(chunk)
                # One write for the head and a whole answer (its first chunk).
                self.send(pending + (b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk))
                pending = b""
            if pending:
                self.send(pending)  # no body
            if chunked:
                self.send(b"0\r\n\r\n")
                keep_alive = False  # a stream's connection ends with it
        finally:
            if watcher is not None:
                watcher.kill()
            if hasattr(body, "close"):
                body.close()
        self.server.access(self, incoming, status[:3], sent, started)
        return keep_alive

    def _watch_for_close(self, gone):
        """While a stream is written: tell the app as soon as its client left
        (a client sends nothing while it reads a stream)."""
        with contextlib.suppress(OSError):
            self.sock.recv(1)
        for callback in gone:
            callback()

    def environ(self, incoming, head, path, query, gone):
        """The WSGI environ of a request (PEP 3333), from the one reading."""
        server_name, server_port = self.server.bind_addr
        environ = {
            "REQUEST_METHOD": incoming.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": server_name,
            "SERVER_PORT": str(server_port),
            "SERVER_PROTOCOL": f"HTTP/{incoming.version}",
            "REMOTE_ADDR": self.address[0],
            "REMOTE_PORT": str(self.address[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(bytes(incoming.body)),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            CLIENT_GONE: gone.append,
        }
        for name, value in incoming.fields.items():
            if name in (b"content-length", b"transfer-encoding"):
                continue  # the body is read already: its length is what it is
            key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
            if name == b"content-type":
                key = "CONTENT_TYPE"
            text = value.decode("latin-1")
            environ[key] = f"{environ[key]}, {text}" if key in environ else text
        if incoming.body:
            environ["CONTENT_LENGTH"] = str(len(incoming.body))
        environ["HTTP_X_REQUEST_ID"] = head.request_id
        environ[HEAD] = head
        return environ


def reap(connections, interval):
    """End every wait that is over, each ``interval`` seconds: one green
    thread for all the connections (``connections``: any iterable of them)."""
    while True:
        eventlet.sleep(interval)
        now = time.monotonic()
        for connection in list(connections):
            deadline = connection.deadline
            if deadline is not None and deadline <= now:
                connection.expire()


def reap_interval(limits):
    """A fifth of the shortest timeout, between 50 ms and a second."""
    return min(max(min(limits.values()) / 5, 0.05), 1.0)


def split_target(target):
    """``(path, query)`` of a request target, the path percent-decoded as
    WSGI wants it (bytes as latin-1); an absolute form gives its path."""
    if not target.startswith(b"/"):
        try:
            url = httptools.parse_url(target)
            path, query = url.path or b"/", url.query or b""
        except httptools.HttpParserInvalidURLError:
            path, query = target, b""
    else:
        path, _, query = target.partition(b"?")
    if b"%" in path:
        path = unquote_to_bytes(path)
    return path.decode("latin-1"), query.decode("latin-1")


def _text(value):
    return None if value is None else value.decode("latin-1")


def _connection_header(incoming, keep_alive):
    if not keep_alive:
        return b"Connection: close\r\n"
    return b"Connection: keep-alive\r\n" if incoming.version == "1.0" else b""


class Acceptor:
    """The accept loop of one gateway process: connections counted and
    capped, a full file table waited out."""

    def __init__(self, server):
        self.server = server
        self.trouble = Trouble(logging.getLogger(__name__))

    def run(self, listener, spawn):
        pause = 0.05
        while True:
            try:
                sock, address = listener.accept()
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    raise
                self.trouble.occurred("cannot accept connections (%s); pausing", exc.strerror)
                eventlet.sleep(pause)
                pause = min(pause * 2, 1.0)
                continue
            pause = 0.05
            self.trouble.over("accepting connections again")
            # Answers go out whole as written: no wait for the peer's delayed ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.server.full():
                _refuse_at_capacity(sock)
                continue
            spawn(self.server.opened(sock, address).serve)


def _refuse_at_capacity(sock):
    try:
        sock.settimeout(1.0)
        message = "The gateway has all the connections it takes; retry in a moment."
        sock.sendall(error_bytes(503, "SERVICE_UNAVAILABLE", message, [("Retry-After", "1")]))
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
