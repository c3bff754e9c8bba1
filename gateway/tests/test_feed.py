"""The live feed (GET /api/feed) of a real gateway: the changes it hears
(dispatched here as the articles and events services publish them) reach
its clients as server-sent events."""

import json
import os
import socket
import struct
import time
import uuid

import pytest
import requests
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_waiter
from nameko.testing.utils import get_extension

from gateway.feed import _CLOSE, FEED_METRICS, Change, Client, FeedHub
from gateway.service import GatewayService
from gateway.tests.test_read_cache import FakeAuth
from tests.support import eventually


class Stream:
    """A feed client: its messages, one at a time."""

    def __init__(self, url, headers=None):
        self.response = requests.get(url, headers=headers or {}, stream=True, timeout=5)
        self.lines = self.response.iter_lines(decode_unicode=True)

    def next(self):
        """The next message as a dict of its fields (a comment: ``{"comment": ...}``)."""
        message = {}
        for line in self.lines:
            if line == "":
                if message:
                    return message
                continue
            if line.startswith(":"):
                return {"comment": line[1:].strip()}
            field, _, value = line.partition(": ")
            message[field] = value
        raise AssertionError("the stream ended")

    def changes(self, count):
        """The next ``count`` change messages, (event, id, data)."""
        found = []
        while len(found) < count:
            message = self.next()
            if "event" in message:
                found.append((message["event"], message["id"], json.loads(message["data"])))
        return found

    def close(self):
        self.response.close()


@pytest.fixture
def gateway(config, container_factory):
    def start(**settings):
        container_factory(FakeAuth, config).start()
        container = container_factory(GatewayService, {**config, **settings})
        container.start()
        return container

    return start


@pytest.fixture
def feed(gateway_url):
    streams = []

    def connect(query="", **headers):
        streams.append(Stream(f"{gateway_url}/api/feed{query}", headers))
        return streams[-1]

    yield connect
    for stream in streams:
        stream.close()


def dispatcher(container, config):
    dispatch = event_dispatcher(config)

    def send(event_type, data, event_id=None):
        source, handler = {
            "article": ("articles", "on_article_changed"),
            "event": ("events", "on_event_changed"),
        }[event_type.split("_")[0]]
        payload = {"eventId": event_id or str(uuid.uuid4()), "data": data}
        with entrypoint_waiter(container, handler):
            dispatch(source, event_type, payload)
        return payload["eventId"]

    return send


def item(title="Bridge reopens"):
    return {"id": str(uuid.uuid4()), "title": title, "authorUID": "a1"}


ALL_TYPES = [
    "article_added",
    "article_updated",
    "article_deleted",
    "event_added",
    "event_updated",
    "event_deleted",
]


def test_every_type_of_change_reaches_a_client(gateway, config, feed):
    send = dispatcher(gateway(), config)
    stream = feed()
    assert stream.next() == {"retry": "3000"}
    sent = [(event_type, send(event_type, item(event_type))) for event_type in ALL_TYPES]
    received = stream.changes(6)
    assert [(event, event_id) for event, event_id, _ in received] == sent
    assert [data["title"] for _, _, data in received] == ALL_TYPES
    assert stream.response.headers["Content-Type"].startswith("text/event-stream")
    assert stream.response.headers["Cache-Control"] == "no-cache"


def test_the_changes_of_an_item_arrive_in_order(gateway, config, feed):
    send = dispatcher(gateway(), config)
    stream = feed()
    article = item()
    for n in range(20):
        send("article_updated", {**article, "title": f"v{n}"})
    assert [data["title"] for _, _, data in stream.changes(20)] == [f"v{n}" for n in range(20)]


def test_no_private_field_reaches_a_client(gateway, config, feed):
    send = dispatcher(gateway(), config)
    stream = feed()
    send("article_added", {**item(), "passwordHash": "$argon2...", "emailAddress": "a@x"})
    [(_, _, data)] = stream.changes(1)
    assert set(data) == {"id", "title", "authorUID"}


def test_a_reconnecting_client_resumes_after_its_last_id(gateway, config, feed):
    send = dispatcher(gateway(), config)
    first = feed()
    ids = [send("article_added", item(f"a{n}")) for n in range(4)]
    seen = first.changes(2)
    first.close()
    resumed = feed(**{"Last-Event-ID": seen[-1][1]})
    assert [event_id for _, event_id, _ in resumed.changes(2)] == ids[2:]
    # And later changes follow, once each.
    later = send("event_added", item("later"))
    assert [event_id for _, event_id, _ in resumed.changes(1)] == [later]


def test_an_id_no_longer_held_gets_a_reset(gateway, config, feed):
    send = dispatcher(gateway(FEED_REPLAY_SIZE=2), config)
    ids = [send("article_added", item(f"a{n}")) for n in range(3)]  # the first is gone
    for last in (ids[0], "never-seen"):
        stream = feed(**{"Last-Event-ID": last})
        assert stream.next() == {"retry": "3000"}
        assert stream.next()["event"] == "reset"


def test_types_narrow_the_feed(gateway, config, feed, web_session):
    send = dispatcher(gateway(), config)
    stream = feed("?types=events")
    send("article_added", item("an article"))
    send("event_added", item("an event"))
    assert [event for event, _, _ in stream.changes(1)] == ["event_added"]
    bad = web_session.get("/api/feed?types=articles,users")
    assert (bad.status_code, bad.json()["error"]) == (400, "BAD_REQUEST")


def test_clients_beyond_the_cap_get_503(gateway, feed, web_session):
    hub = get_extension(gateway(FEED_MAX_CLIENTS=2), FeedHub)
    feed(), feed()
    refused = web_session.get("/api/feed")
    assert (refused.status_code, refused.json()["error"]) == (503, "SERVICE_UNAVAILABLE")
    assert hub.stats() == {"clients": 2, "changes": 0, "refused": 1, "dropped": 0}
    # What /metrics reports, from the same figures.
    families = {family.name: family for family in FEED_METRICS.families([hub])}
    assert families["localnews_feed_clients"].samples[0].value == 2
    assert families["localnews_feed_refused"].samples[0].value == 1


def test_a_client_that_falls_behind_is_closed_not_waited_for():
    client = Client(frozenset({"articles"}))
    changes = [
        Change(seq, "article_added", {"eventId": str(seq), "data": item()}) for seq in range(300)
    ]
    for change in changes:
        client.offer(change)  # never blocks the hub
    queued = [client.queue.get_nowait() for _ in range(client.queue.qsize())]
    # What it had is dropped, nothing more is queued: it resumes from the buffer.
    assert queued == [_CLOSE]


def test_idle_streams_get_heartbeats(gateway, feed):
    gateway(FEED_HEARTBEAT_SECONDS=0.2)
    stream = feed()
    assert stream.next() == {"retry": "3000"}
    assert stream.next() == {"comment": "heartbeat"}


def test_the_gateway_ends_open_streams_when_it_stops(gateway, feed):
    container = gateway()
    stream = feed()
    assert stream.next() == {"retry": "3000"}
    started = time.monotonic()
    container.stop()
    assert time.monotonic() - started < 3  # not a heartbeat's wait, nor the grace
    # The stream ends properly (not cut), and the client knows to reconnect.
    with pytest.raises(AssertionError, match="the stream ended"):
        stream.next()


def test_clients_that_left_are_let_go_at_once_with_their_sockets(gateway, config, gateway_url):
    container = gateway()
    hub = get_extension(container, FeedHub)
    host, port = gateway_url.removeprefix("http://").split(":")
    open_files = len(os.listdir("/proc/self/fd"))  # the gateway runs in this process
    clients = []
    for _ in range(20):
        client = socket.create_connection((host, int(port)))
        client.sendall(b"GET /api/feed HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"retry: 3000" in client.recv(4096)
        clients.append(client)
    for client in clients:  # gone at once, as a phone that lost its network
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
    # No change, no heartbeat needed: the server sees each socket close.
    eventually(lambda: hub.stats()["clients"] == 0, timeout=2)
    eventually(lambda: len(os.listdir("/proc/self/fd")) <= open_files, timeout=2)
