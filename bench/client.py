"""One keep-alive HTTP connection to a gateway, JSON in and out.

Its own connection, not a pool: gateway copies share one port, and a kept
connection stays with the copy that accepted it.
"""

import http.client
import json
import time
from typing import NamedTuple

from .infra import CannotRun
from .processes import connection_owners


class Response(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: object


class _Connection(http.client.HTTPConnection):
    """Counts its connects: a reconnect may land on another gateway copy."""

    connects = 0

    def connect(self):
        super().connect()
        self.connects += 1


class Client:
    def __init__(self, port, token=None, timeout=15):
        self.port = port
        self.token = token
        self.connection = _Connection("127.0.0.1", port, timeout=timeout)

    def request(self, method, path, payload=None):
        headers = {}
        body = None
        if payload is not None:
            body = json.dumps(payload)
            headers["Content-Type"] = "application/json"
        # Reads go out as the public's do (a cache may pass over authorised ones).
        if self.token and method != "GET":
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body, headers)
                response = self.connection.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept connection the gateway closed while idle (its idle
                # timeout): connect again, as browsers and HTTP libraries do.
                self.connection.close()
                if attempt == 2:
                    raise
            except (http.client.HTTPException, OSError):
                self.connection.close()  # the next request connects again
                raise
        return Response(response.status, response.headers, json.loads(data) if data else None)

    def get(self, path):
        return self.request("GET", path)

    def expect(self, status, method, path, payload=None):
        """The answer's body; anything but ``status`` means the stack is not right."""
        response = self.request(method, path, payload)
        if response.status != status:
            raise CannotRun(
                f"{method} {path} on port {self.port}: {response.status} {response.body}"
            )
        return response.body

    @property
    def local_port(self):
        """The client side's port while connected (else ``None``)."""
        sock = self.connection.sock
        return sock.getsockname()[1] if sock else None

    @property
    def reconnects(self):
        return max(0, self.connection.connects - 1)

    def close(self):
        self.connection.close()


def client_on_copy(port, pid, copy_pids, timeout):
    """A client whose connection the gateway copy ``pid`` accepted and served
    ``/health`` with 200: that copy is up. Copies on one port cannot be
    addressed, so connect until the kernel hands a connection to this one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client = Client(port)
        try:
            healthy = client.get("/health").status == 200
            if healthy and connection_owners(port, copy_pids).get(client.local_port) == pid:
                return client
        except (http.client.HTTPException, OSError):
            pass
        client.close()
        time.sleep(0.2)
    raise CannotRun(f"the gateway copy {pid} on port {port} did not serve /health in {timeout} s")
