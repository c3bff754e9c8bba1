"""One strict reading of every request, on raw sockets (gateway/server.py).

The classic request-smuggling and desync cases: each gets a JSON 400 and its
connection closed, whether its path is a read-cache hit or not (there is one
reading for both), and what follows it in the same bytes is never answered.
"""

import json
import re
import socket

import pytest

from gateway.headers import request_id
from gateway.service import GatewayService
from gateway.tests.test_read_cache import CALLS, FakeArticles, FakeAuth, article


@pytest.fixture
def gateway(config, container_factory):
    CALLS.clear()
    FakeArticles.items.clear()
    for service in (FakeArticles, FakeAuth):
        container_factory(service, config).start()
    container_factory(GatewayService, config).start()
    return config


def exchange(config, data, timeout=5):
    """Everything the gateway answers to ``data`` until it closes the connection."""
    host, port = config["WEB_SERVER_ADDRESS"].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def statuses(answer):
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]


def error_of(answer):
    return json.loads(answer.rsplit(b"\r\n\r\n", 1)[1])["error"]


@pytest.fixture
def paths(gateway, web_session):
    """A path the read cache answers, and one that goes to a service."""
    item = article()
    hit = f"/api/articles/{item['id']}"
    web_session.get(hit)
    assert web_session.get(hit).headers["X-Cache"] == "hit"
    return {"hit": hit.encode(), "miss": b"/api/articles"}


SMUGGLED = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
# name: the request head after its request line (each followed by SMUGGLED)
DESYNC = {
    "CL.CL, two different lengths": b"Content-Length: 3\r\nContent-Length: 35\r\n\r\nabc",
    "CL.CL, the same length twice": b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "CL.TE": b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "TE.CL": b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "TE.TE, an unknown coding": b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "TE.TE, chunked then identity": b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    "TE.TE, two headers": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n",
    "TE.TE, space before the colon": b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "TE.TE, gzip only": b"Transfer-Encoding: gzip\r\n\r\nabc",
    "a bare LF inside the head": b"X-A: 1\nContent-Length: 37\r\n\r\n",
    "a bare CR inside the head": b"X-A: 1\rContent-Length: 37\r\n\r\n",
    "a signed Content-Length": b"Content-Length: +3\r\n\r\nabc",
    "a Content-Length that is not a number": b"Content-Length: 3x\r\n\r\nabc",
    "whitespace before a colon": b"Host : x\r\n\r\n",
    "obs-fold, a folded line": b"X-A: 1\r\n folded\r\n\r\n",
    "a control character in a name": b"X\x01A: 1\r\n\r\n",
    "a NUL in a value": b"X-A: a\x00b\r\n\r\n",
}


@pytest.mark.parametrize("kind", ["hit", "miss"])
@pytest.mark.parametrize("name", DESYNC)
def test_desync_cases_are_refused_and_what_follows_never_answered(paths, gateway, kind, name):
    method = b"GET " if kind == "hit" else b"POST "
    host = b"" if b"Host :" in DESYNC[name] else b"Host: x\r\n"
    request = method + paths[kind] + b" HTTP/1.1\r\n" + host + DESYNC[name] + SMUGGLED
    answer = exchange(gateway, request)
    assert statuses(answer) == [400], answer
    assert error_of(answer) == "BAD_REQUEST"
    assert b"Connection: close\r\n" in answer


@pytest.mark.parametrize("kind", ["hit", "miss"])
def test_a_request_without_exactly_one_host_is_refused(paths, gateway, kind):
    for hosts in (b"", b"Host: x\r\nHost: y\r\n"):
        answer = exchange(gateway, b"GET " + paths[kind] + b" HTTP/1.1\r\n" + hosts + b"\r\n")
        assert statuses(answer) == [400] and b"Host" in answer


def test_pipelining_after_a_body_answers_each_request_in_order(paths, gateway):
    body = b'{"title": "x"}'
    post = (
        b"PUT " + paths["hit"] + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    close = b"GET " + paths["hit"] + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = exchange(gateway, post + SMUGGLED + close)
    # The PUT needs a token (401); then the health check (503: the stand-in
    # services have no health of their own); then the item.
    assert statuses(answer) == [401, 503, 200]


def test_a_chunked_body_is_read_as_its_chunks(paths, gateway):
    body = b'{"emailAddress": "a@b.c", "password": '  # cut short: malformed JSON
    request = (
        b"POST /api/auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n\r\n"
        % (len(body), body)
    )
    answer = exchange(gateway, request)
    assert statuses(answer) == [400] and b"Malformed JSON" in answer  # the body, read whole


def test_over_long_request_lines_heads_and_bodies_are_refused_as_json(paths, gateway):
    long_line = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert statuses(answer := exchange(gateway, long_line)) == [414]
    assert error_of(answer) == "URI_TOO_LONG"
    many = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: 1\r\n" * 101 + b"\r\n"
    assert error_of(exchange(gateway, many)) == "HEADERS_TOO_LARGE"
    huge = b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 70_000 + b"\r\n\r\n"
    assert error_of(exchange(gateway, huge)) == "HEADERS_TOO_LARGE"
    body = b"POST /api/articles HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n"
    assert error_of(exchange(gateway, body)) == "PAYLOAD_TOO_LARGE"


def test_not_http_1_is_refused_as_json(paths, gateway):
    for request in (
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"get / HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01",
    ):
        answer = exchange(gateway, request)
        assert statuses(answer) == [400] and error_of(answer) == "BAD_REQUEST"


def test_an_echoed_request_id_matches_its_pattern_whole(paths, gateway):
    assert request_id("abc\n") != "abc\n" and request_id("abc") == "abc"  # $ would match
    for sent in (b"abc def", b"a" * 65, b"abc;x"):
        head = b"GET " + paths["hit"] + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        answer = exchange(gateway, head + b"X-Request-Id: " + sent + b"\r\n\r\n")
        echoed = next(line for line in answer.split(b"\r\n") if line.startswith(b"X-Request-Id:"))
        assert echoed.split(b": ", 1)[1] != sent and len(echoed.split(b": ", 1)[1]) == 32


def test_an_encoded_question_mark_is_part_of_the_path_never_a_hit(paths, gateway, web_session):
    listed = web_session.get("/api/articles?tag=x")
    assert listed.status_code == 200
    assert web_session.get("/api/articles?tag=x").headers["X-Cache"] == "hit"
    aliased = web_session.get("/api/articles%3Ftag=x")
    assert aliased.status_code == 404 and "X-Cache" not in aliased.headers


def test_unknown_query_parameters_never_reach_the_cache(paths, gateway, web_session):
    web_session.get("/api/articles?limit=5")
    calls = CALLS["articles.list"]
    for buster in range(20):
        answer = web_session.get(f"/api/articles?limit=5&junk={buster}")
        assert answer.headers["X-Cache"] == "hit"
    assert CALLS["articles.list"] == calls
