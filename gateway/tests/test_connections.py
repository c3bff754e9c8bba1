"""Connections strangers cannot hold for ever (gateway/server.py): timeouts,
the cap on connections, a full file table, the feed's slots."""

import os
import resource
import socket
import subprocess
import sys
import time

import pytest
import requests

from gateway.feed import FeedHub
from gateway.http import GatewayServer
from gateway.service import GatewayService
from gateway.tests.test_read_cache import FakeArticles, FakeAuth
from servicekit.config import ROOT
from tests.support import eventually, free_port

TIMEOUTS = {
    "GATEWAY_HEAD_TIMEOUT_SECONDS": 0.5,
    "GATEWAY_BODY_TIMEOUT_SECONDS": 0.5,
    "GATEWAY_IDLE_TIMEOUT_SECONDS": 0.5,
}


@pytest.fixture
def gateway(config, container_factory):
    def start(**settings):
        for service in (FakeArticles, FakeAuth):
            container_factory(service, config).start()
        container = container_factory(GatewayService, {**config, **settings})
        container.start()
        return container

    return start


def connect(config):
    host, port = config["WEB_SERVER_ADDRESS"].split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def read_all(sock):
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_a_head_sent_a_byte_at_a_time_is_timed_out_with_408(gateway, config):
    gateway(**TIMEOUTS)
    with connect(config) as sock:
        started = time.monotonic()
        for byte in b"GET /api/openapi.json HTTP/1.1\r\nHost: x\r\n":
            try:
                sock.send(bytes([byte]))
            except OSError:
                break  # closed on us: the point
            time.sleep(0.1)
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 ") and b'"REQUEST_TIMEOUT"' in answer
    assert time.monotonic() - started < 3


def test_a_body_that_never_comes_is_timed_out_with_408(gateway, config):
    gateway(**TIMEOUTS)
    with connect(config) as sock:
        sock.sendall(b"POST /api/auth HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        assert read_all(sock).startswith(b"HTTP/1.1 408 ")


def test_a_connection_that_says_nothing_or_idles_is_closed(gateway, config):
    gateway(**TIMEOUTS)
    with connect(config) as silent:
        assert read_all(silent) == b""  # nothing asked, nothing answered: just closed
    with connect(config) as idle:
        idle.sendall(b"GET /api/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        answer = read_all(idle)  # the answer, then the idle close
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"HTTP/1.1") == 1
        assert time.monotonic() - started < 3


def test_connections_beyond_the_cap_get_503_and_room_comes_back(gateway, config):
    container = gateway(GATEWAY_MAX_CONNECTIONS=5)
    held = [connect(config) for _ in range(5)]
    try:
        for sock in held:  # each is taken: it answered once and stays open
            sock.sendall(b"GET /api/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        with connect(config) as sixth:
            answer = read_all(sixth)
        assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1\r\n" in answer
        assert b'"SERVICE_UNAVAILABLE"' in answer
    finally:
        for sock in held:
            sock.close()
    url = "http://" + config["WEB_SERVER_ADDRESS"] + "/api/openapi.json"
    eventually(lambda: requests.get(url, timeout=5).status_code == 200)
    server = next(ext for ext in container.subextensions if isinstance(ext, GatewayServer))
    assert server.stats()["refused"] >= 1


def test_a_full_file_table_pauses_accepting_and_never_stops_the_gateway(config, tmp_path):
    """The gateway alone, as ``nameko run`` starts it, under a low limit of
    open files: a flood of idle connections fills it; the gateway answers
    again once they are gone."""
    port = free_port()
    env = {
        **os.environ,
        "AMQP_URI": config["AMQP_URI"],
        "GATEWAY_PORT": str(port),
        "GATEWAY_MAX_CONNECTIONS": "10000",  # above the limit: the file table fills first
        "GATEWAY_HEAD_TIMEOUT_SECONDS": "60",
        "FEED_MAX_CLIENTS": "10",  # the feed raises the limit by its clients
        "LOG_LEVEL": "INFO",  # the trouble's end is said at INFO
    }
    log = (tmp_path / "gateway.log").open("wb")

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))

    gateway = subprocess.Popen(
        [sys.executable, "-m", "nameko", "run", "--config", "config.yml", "gateway.service"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=low_limit,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api/openapi.json"
    try:
        eventually(lambda: _answers(url), timeout=30, interval=0.2)
        flood = []
        said = lambda: (tmp_path / "gateway.log").read_text()  # noqa: E731
        while "cannot accept connections" not in said():  # more than its file table holds
            assert len(flood) < 1000, said()
            try:
                flood.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            except OSError:
                time.sleep(0.05)  # the listen backlog is full: the gateway pauses
        time.sleep(0.5)  # it keeps meeting EMFILE meanwhile
        assert gateway.poll() is None, said()
        for sock in flood:
            sock.close()
        eventually(lambda: _answers(url), timeout=10, interval=0.2)
        # Said once a pause, not a line a try: each pause's line, then its end.
        said_lines = [
            line for line in said().splitlines()
            if "cannot accept connections" in line or "accepting connections again" in line
        ]  # fmt: skip
        pauses = ["pause" if "cannot" in line else "end" for line in said_lines]
        assert pauses and pauses == ["pause", "end"] * (len(pauses) // 2)
    finally:
        gateway.terminate()
        gateway.wait(30)
        log.close()


def _answers(url):
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_one_address_cannot_take_every_feed_slot(gateway, config):
    container = gateway(FEED_MAX_CLIENTS_PER_ADDRESS=2, FEED_MAX_CLIENTS=10)
    hub = next(ext for ext in container.subextensions if isinstance(ext, FeedHub))
    streams = []
    try:
        for _ in range(2):
            sock = connect(config)
            sock.sendall(b"GET /api/feed HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"retry: 3000" in sock.recv(4096)
            streams.append(sock)
        with connect(config) as third:
            third.sendall(b"GET /api/feed HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = read_all(third)
        assert answer.startswith(b"HTTP/1.1 503 ") and b"from your address" in answer
        assert hub.stats()["clients"] == 2 and hub.stats()["refused"] == 1
    finally:
        for sock in streams:
            sock.close()
    eventually(lambda: hub.stats()["clients"] == 0, timeout=2)  # freed as they closed
