"""A TCP forwarder that can cut the line: a broker outage without touching the broker.

``TcpProxy(("localhost", 5672))`` listens on 127.0.0.1 (a free port) and
forwards every connection to the target. ``cut()`` drops the open connections
and refuses new ones (they are closed as soon as they are accepted), as a
stopped or unreachable broker would; ``restore()`` lets them through again.
The real RabbitMQ keeps running for everyone else.

Green threads: the test process is monkey-patched by eventlet.
"""

import contextlib
import socket
from urllib.parse import urlsplit, urlunsplit

import eventlet

CHUNK = 65536


class TcpProxy:
    def __init__(self, target):
        self.target = target
        self._listener = eventlet.listen(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.is_cut = False
        self.refused = 0  # connections closed at once while cut
        self._open = set()  # (client, upstream) socket pairs being forwarded
        self._pool = eventlet.GreenPool()
        self._acceptor = eventlet.spawn(self._accept_forever)

    def url(self, amqp_uri):
        """``amqp_uri`` with its host and port replaced by the proxy's."""
        parts = urlsplit(amqp_uri)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def cut(self):
        self.is_cut = True
        for pair in list(self._open):
            _shut(*pair)

    def restore(self):
        self.is_cut = False

    def close(self):
        """Accept no more connections; those open go on until their ends close.

        So services still running on them (stopped later in the test's
        teardown) can stop gracefully.
        """
        self.is_cut = False
        self._acceptor.kill()
        self._listener.close()

    def _accept_forever(self):
        while True:
            client, _ = self._listener.accept()
            if self.is_cut:
                self.refused += 1
                client.close()
            else:
                self._pool.spawn_n(self._forward, client)

    def _forward(self, client):
        try:
            upstream = eventlet.connect(self.target)
        except OSError:
            client.close()
            return
        pair = (client, upstream)
        self._open.add(pair)
        try:
            # Either side closing (or cut()) ends both directions.
            back = eventlet.spawn(_pump, upstream, client)
            _pump(client, upstream)
            _shut(*pair)
            back.wait()
        finally:
            self._open.discard(pair)
            for sock in pair:
                sock.close()


def _pump(source, sink):
    # eventlet raises EOFError, not OSError, for a socket shut down under a read.
    with contextlib.suppress(OSError, EOFError):
        while data := source.recv(CHUNK):
            sink.sendall(data)


def _shut(*socks):
    """Shut the sockets down, which wakes the green threads reading them;
    closing a socket under another green thread's read is an error."""
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
