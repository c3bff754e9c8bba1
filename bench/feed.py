"""Clients of the live feed (``GET /api/feed``), a thousand at a time and
cheaply: non-blocking sockets on one selector, read by one thread, each
stream parsed as it comes (the HTTP/1.1 answer's head, its chunks, then the
server-sent events in them).

A client notes when each ``article_added`` message reached it (by the
article's id), as the wall-clock time (``time.time()``) the selector said its
socket had data: the bytes were in by then, whatever the time this process
takes to go through a thousand ready sockets. Bytes that come while it goes
through them are stamped at the next pass: ``slowest_pass_ms`` bounds how
late that is.
"""

import errno
import json
import queue
import resource
import selectors
import socket
import struct
import threading
import time

REQUEST = (
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
)
RECEIVE_BYTES = 65536
POLL_SECONDS = 0.01
# SO_LINGER on, 0 s: close() resets the connection rather than ending it.
RESET_ON_CLOSE = struct.pack("ii", 1, 0)


def allow_descriptors():
    """Raise this process's soft limit of open files to the hard limit: a
    feed client is a socket, and the usual soft limit is 1,024. Returns the
    soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # an unlimited hard limit: the kernel's cap applies
            return soft
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class FeedClient:
    """One connection to the feed and what it received.

    ``ready``: the answer was 200 ``text/event-stream`` and its ``retry:``
    line came; ``error``: why it is closed (``None`` while it is open);
    ``received``: article id -> when its ``article_added`` message came.
    """

    def __init__(self, sock):
        self.sock = sock
        self.local_port = None
        self.status = None
        self.ready = False
        self.error = None
        self.received = {}
        self._raw = b""  # bytes not parsed yet: the head, then chunk framing
        self._chunked = False
        self._chunk_left = 0  # data bytes of the current chunk still to come
        self._skip = 0  # bytes of a chunk's closing CRLF still to skip
        self._stream = b""  # the event stream, not yet cut into messages

    @property
    def open(self):
        return self.error is None

    def take(self, data, stamp):
        """Parse ``data``, read at ``stamp``; False once the client must close."""
        self._raw += data
        if self.status is None and not self._head():
            return self.error is None
        self._dechunk()
        while (end := self._stream.find(b"\n\n")) >= 0:
            block, self._stream = self._stream[:end], self._stream[end + 2 :]
            self._message(block, stamp)
        return self.error is None

    def _head(self):
        """The status line and headers, once all in; True when the stream may follow."""
        end = self._raw.find(b"\r\n\r\n")
        if end < 0:
            return False
        head, self._raw = self._raw[:end].decode("latin-1"), self._raw[end + 4 :]
        status_line, *lines = head.split("\r\n")
        self.status = int(status_line.split()[1])
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if self.status != 200:
            self.error = f"status {self.status}"
            return False
        if not headers.get("content-type", "").startswith("text/event-stream"):
            self.error = f"content type {headers.get('content-type')!r}"
            return False
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        return True

    def _dechunk(self):
        """Move the data of whole or partial chunks from ``_raw`` to ``_stream``."""
        if not self._chunked:
            self._stream += self._raw
            self._raw = b""
            return
        while self._raw:
            if self._skip:
                skipped = min(self._skip, len(self._raw))
                self._raw, self._skip = self._raw[skipped:], self._skip - skipped
            elif self._chunk_left:
                piece = self._raw[: self._chunk_left]
                self._stream += piece
                self._raw = self._raw[len(piece) :]
                self._chunk_left -= len(piece)
                if not self._chunk_left:
                    self._skip = 2
            else:
                line_end = self._raw.find(b"\r\n")
                if line_end < 0:
                    return
                size = int(self._raw[:line_end].split(b";")[0], 16)
                self._raw = self._raw[line_end + 2 :]
                if size == 0:  # the server ended the stream
                    self.error = "stream ended"
                    return
                self._chunk_left = size

    def _message(self, block, stamp):
        event, data = b"message", []
        for line in block.split(b"\n"):
            if line.startswith(b":"):  # a comment: the heartbeat
                continue
            field, _, value = line.partition(b":")
            value = value.removeprefix(b" ")
            if field == b"retry":
                self.ready = True
            elif field == b"event":
                event = value
            elif field == b"data":
                data.append(value)
        if event == b"article_added" and data:
            article_id = json.loads(b"\n".join(data))["id"]
            self.received.setdefault(article_id, stamp)


class FeedClients:
    """Feed clients of the gateway on ``port``, read by one thread. ``reset()``
    and ``close()`` reset connections: the server, which does not read a
    feed client's socket, drops each at its next write to it (the next
    change or heartbeat), which then fails at once."""

    def __init__(self, port, path="/api/feed?types=articles"):
        self.port = port
        self.request = REQUEST.format(path=path, port=port).encode()
        self.clients = []
        self.selector = selectors.DefaultSelector()
        self._new = queue.SimpleQueue()  # clients the reader is yet to watch
        self._resets = queue.SimpleQueue()  # clients the reader is to reset
        self._wake, self._waker = socket.socketpair()
        self._wake.setblocking(False)
        self.selector.register(self._wake, selectors.EVENT_READ, None)
        self._stopping = False
        self.slowest_pass_ms = 0.0
        self._reader = threading.Thread(target=self._read, name="feed-reader", daemon=True)
        self._reader.start()

    def open(self, count, batch=50, timeout=30.0):
        """``count`` more clients, ``batch`` at a time, each batch waited for
        (up to ``timeout``) before the next: a thousand connects at once would
        overflow the listen backlog and time its retries, not the feed."""
        opened = []
        for first in range(0, count, batch):
            new = [self._connect() for _ in range(min(batch, count - first))]
            self._waker.send(b"x")
            self.wait(lambda new=new: all(c.ready or not c.open for c in new), timeout)
            opened += new
        for client in opened:
            if client.open and not client.ready:
                client.error = f"no retry: line in {timeout:g} s"
        return opened

    def _connect(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        client = FeedClient(sock)
        self.clients.append(client)
        code = sock.connect_ex(("127.0.0.1", self.port))
        if code not in (0, errno.EINPROGRESS):
            client.error = f"connect: {errno.errorcode.get(code, code)}"
            return client
        client.local_port = sock.getsockname()[1]
        self._new.put(client)
        return client

    @staticmethod
    def wait(done, timeout):
        """Poll ``done()`` until it holds or ``timeout`` passed; whether it holds."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_SECONDS)
        return True

    def _read(self):
        while not self._stopping:
            events = self.selector.select(timeout=0.5)
            stamp = time.time()  # every ready socket's bytes were in by now
            for key, mask in events:
                client = key.data
                if client is None:
                    self._drain_wake()
                elif mask & selectors.EVENT_WRITE:
                    self._send_request(client)
                else:
                    self._receive(client, stamp)
            self.slowest_pass_ms = max(self.slowest_pass_ms, (time.time() - stamp) * 1000)
            while not self._new.empty():
                client = self._new.get_nowait()
                self.selector.register(client.sock, selectors.EVENT_WRITE, client)
            while not self._resets.empty():
                client = self._resets.get_nowait()
                if client.open:
                    self._drop(client, "reset by the bench", reset=True)

    def _drain_wake(self):
        try:
            while self._wake.recv(4096):
                pass
        except BlockingIOError:
            pass

    def _send_request(self, client):
        """Connected (or refused): send the GET, then wait for the answer."""
        code = client.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._drop(client, f"connect: {errno.errorcode.get(code, code)}")
            return
        try:
            # A fresh socket's send buffer takes these few bytes whole.
            if client.sock.send(self.request) != len(self.request):
                self._drop(client, "request not sent whole")
                return
        except OSError as exc:
            self._drop(client, f"send: {exc}")
            return
        self.selector.modify(client.sock, selectors.EVENT_READ, client)

    def _receive(self, client, stamp):
        try:
            data = client.sock.recv(RECEIVE_BYTES)
        except BlockingIOError:
            return
        except OSError as exc:
            self._drop(client, f"receive: {exc}")
            return
        if not data:
            self._drop(client, "closed by the server")
        elif not client.take(data, stamp):
            self._drop(client, client.error)

    def _drop(self, client, reason, reset=False):
        client.error = client.error or reason
        self.selector.unregister(client.sock)
        if reset:
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
        client.sock.close()

    def reset(self, clients, timeout=10.0):
        """Reset the connections of ``clients``, and wait until they are."""
        for client in clients:
            self._resets.put(client)
        self._waker.send(b"x")
        self.wait(lambda: not any(client.open for client in clients), timeout)

    @staticmethod
    def failures(clients):
        """How many of ``clients`` were refused with 503, or failed otherwise
        (no connection, no answer, another answer, no ``retry:`` line)."""
        counts = {"503": 0, "failed": 0}
        for client in clients:
            if client.status == 503:
                counts["503"] += 1
            elif not client.ready:
                counts["failed"] += 1
        return counts

    def close(self):
        """Stop the reader, then reset every connection still open."""
        self._stopping = True
        self._waker.send(b"x")
        self._reader.join()
        for client in self.clients:
            if client.open:
                client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
                client.sock.close()
                client.error = "closed by the bench"
        self.selector.close()
        self._wake.close()
        self._waker.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
