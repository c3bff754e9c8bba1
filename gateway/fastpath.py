"""Cache hits answered as soon as a request's headers are read.

eventlet's HTTP server turns every request into a WSGI call: it parses the
headers with the ``email`` package, builds the environ, and formats each
response header on the way out. For a cache hit that work costs more than the
answer itself. :class:`CachedReadProtocol` looks at each request first: a
plain ``GET``/``HEAD`` whose headers have all arrived is read here and asked
of the read cache (through the WSGI app's ``cached_answer``, the same call
its own path makes); a hit is written there and then, and the connection
waits for its next request. Anything else (a miss, a body, ``Connection:
close``, an escaped path, HTTP/1.0, the access log on) goes on to eventlet
and the WSGI app unchanged, which serves a miss without asking the cache
again.
"""

import time
from email.utils import formatdate

from eventlet.wsgi import BROKEN_SOCK
from nameko.web.server import HttpOnlyProtocol

from .cache import encoded
from .headers import Head, request_id

# Headers that call for eventlet's full handling.
_NOT_PLAIN = frozenset((b"content-length", b"transfer-encoding", b"expect", b"upgrade"))
_HEADERS_WE_READ = frozenset(
    (b"authorization", b"if-none-match", b"x-request-id", b"connection", b"origin")
)
_SUFFIX = b" HTTP/1.1\r\n"
# Set in the environ of a request this path looked up and missed.
MISSED = "localnews.cache_missed"


class CachedReadProtocol(HttpOnlyProtocol):
    """nameko's HTTP protocol, answering read-cache hits itself."""

    missed = False

    def finish(self):
        # The socket is only closed once its writer and reader both are. A
        # client that left (a feed stream's, say) leaves unsent bytes in the
        # writer, whose close then raises EPIPE: nameko's finish skips the
        # reader, and the socket stays open until the garbage collector
        # finds it. Close both, whatever the writer says.
        for stream in (self.wfile, self.rfile):
            try:
                stream.close()
            except OSError as exc:
                if exc.errno not in BROKEN_SOCK:
                    raise
        self.connection.close()

    def get_environ(self, *args, **kwargs):
        environ = super().get_environ(*args, **kwargs)
        if self.missed:
            environ[MISSED] = True
        return environ

    def _read_request_line(self):
        # Called for each request of a keep-alive connection: hits are
        # answered here, and the next request line read, until one that is
        # not a hit goes back to eventlet.
        while True:
            line = super()._read_request_line()
            if not line or not self._answered_from_cache(line):
                return line

    def _answered_from_cache(self, line):
        self.missed = False
        if line.startswith(b"GET "):
            method = "GET"
        elif line.startswith(b"HEAD "):
            method = "HEAD"
        else:
            return False
        if not line.endswith(_SUFFIX) or self.server.log_output:
            return False
        target = line[len(method) + 1 : -len(_SUFFIX)]
        if not target.startswith(b"/") or b"%" in target or b" " in target:
            return False
        # The whole header block is already in the read buffer, or we leave.
        buffered = self.rfile.peek()
        if buffered.startswith(b"\r\n"):
            block, consumed = b"", 2
        else:
            end = buffered.find(b"\r\n\r\n")
            if end < 0:
                return False
            block, consumed = buffered[:end], end + 4
        headers = _plain_headers(block)
        if headers is None:
            return False
        connection = headers.get(b"connection", b"").lower()
        if connection not in (b"", b"keep-alive"):
            return False

        path, _, query = target.decode("latin-1").partition("?")
        head = Head(
            method,
            path,
            query,
            headers.get(b"authorization"),
            _text(headers.get(b"if-none-match")),
            request_id(_text(headers.get(b"x-request-id"))),
            _text(headers.get(b"origin")),
        )
        found = self.server.app.cached_answer(head)
        if found is None:
            self.missed = True
            return False

        self.rfile.read(consumed)
        hit, extra = found
        parts = [b"HTTP/1.1 ", hit.status.encode(), b"\r\n", hit.head, encoded(extra)]
        parts += [b"Date: ", _http_date()]
        if connection:
            parts.append(b"\r\nConnection: keep-alive")
        parts += [b"\r\n\r\n", hit.body]
        self.wfile.write(b"".join(parts))
        self.wfile.flush()
        return True


def _text(value):
    return None if value is None else value.decode("latin-1")


def _plain_headers(block):
    """The few headers we read, lower-cased names; ``None`` if the request
    needs eventlet (a body, folded or malformed lines)."""
    headers = {}
    if not block:
        return headers
    for line in block.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if not colon or not name or name[-1:] in b" \t" or line[:1] in b" \t":
            return None
        name = name.lower()
        if name in _NOT_PLAIN:
            return None
        if name in _HEADERS_WE_READ:
            value = value.strip(b" \t")
            headers[name] = headers[name] + b"," + value if name in headers else value
    return headers


_date = [0, b""]


def _http_date():
    now = int(time.time())
    if now != _date[0]:
        _date[:] = [now, formatdate(now, usegmt=True).encode()]
    return _date[1]
