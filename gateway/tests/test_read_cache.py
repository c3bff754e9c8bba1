"""The gateway's read cache over HTTP: hits, 304, invalidation, private fields.

The gateway runs for real (its container, HTTP server and broadcast queues on
the test vhost). The services it calls are stand-ins it does not own: they
count their calls and never publish events, so each test decides which
changes the gateway hears, and a stale answer cannot be fixed by a late event.
"""

import socket
import uuid
from collections import Counter

import pytest
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_waiter

from gateway.service import GatewayService
from servicekit.errors import NotFound
from servicekit.rpc import rpc
from servicekit.tokens import issue_token
from tests.conftest import bearer

CALLS = Counter()


class FakeResource:
    """A resource service's RPCs over a dict of items."""

    items = {}

    @rpc
    def get(self, item_id):
        CALLS[f"{self.name}.get"] += 1
        if item_id not in self.items:
            raise NotFound(f"No item {item_id}.")
        return self.items[item_id]

    @rpc
    def list(self, limit=None, cursor=None, **filters):
        CALLS[f"{self.name}.list"] += 1
        return {"items": list(self.items.values()), "nextCursor": None}

    @rpc
    def update(self, item_id, payload, expected_author=None, request_key=None):
        self.items[item_id] = {**self.items[item_id], **payload}
        return self.items[item_id]

    @rpc
    def health(self):
        return "ok"


class FakeArticles(FakeResource):
    name = "articles"
    items = {}


class FakeUsers(FakeResource):
    name = "users"
    items = {}


class FakeAuth:
    name = "auth"

    @rpc
    def revocations(self):
        return {"deleted": [], "roles": {}}


@pytest.fixture
def gateway(config, container_factory):
    CALLS.clear()
    for fake in (FakeArticles, FakeUsers):
        fake.items.clear()
    for service in (FakeArticles, FakeUsers, FakeAuth):
        container_factory(service, config).start()
    container = container_factory(GatewayService, {**config, "CACHE_MAX_ENTRIES": 3})
    container.start()
    return container


def article(title="Bridge reopens"):
    item = {"id": str(uuid.uuid4()), "authorUID": "a1", "title": title}
    FakeArticles.items[item["id"]] = item
    return item


def admin(config):
    token = issue_token(
        config["JWT_SECRET"], user_id="admin-1", email="a@x", role="admin", ttl_seconds=60
    )
    return bearer(token)


def hear(gateway, config, event_type, data):
    """The gateway hears ``event_type`` (as if the owning service sent it)."""
    source, handler = {
        "article": ("articles", "on_article_changed"),
        "user": ("users", f"on_{event_type}"),
    }[event_type.split("_")[0]]
    with entrypoint_waiter(gateway, handler):
        event_dispatcher(config)(source, event_type, {"eventId": str(uuid.uuid4()), "data": data})


def test_second_read_is_a_hit_with_the_same_answer(gateway, web_session):
    item = article()
    first = web_session.get(f"/api/articles/{item['id']}")
    second = web_session.get(f"/api/articles/{item['id']}/")  # a trailing slash: the same
    third = web_session.get(f"/api/articles/{item['id'].upper()}", headers={"X-Request-Id": "r-1"})

    assert [r.headers["X-Cache"] for r in (first, second)] == ["miss", "hit"]
    assert second.json() == first.json() == item
    assert second.headers["ETag"] == first.headers["ETag"]
    assert second.headers["Cache-Control"] == "public, no-cache"
    assert second.headers["X-Content-Type-Options"] == "nosniff"
    assert second.headers["X-Request-Id"] != first.headers["X-Request-Id"]
    assert third.headers["X-Request-Id"] == "r-1"
    assert CALLS["articles.get"] == 2  # the upper-case spelling is a URL of its own
    assert web_session.head(f"/api/articles/{item['id']}").content == b""
    assert CALLS["articles.get"] == 2


def test_if_none_match_is_answered_304_from_cache_and_from_a_worker(gateway, web_session):
    item = article()
    path = f"/api/articles/{item['id']}"
    etag = web_session.get(path).headers["ETag"]

    for _ in range(2):  # the first from the worker's answer above, then a hit
        response = web_session.get(path, headers={"If-None-Match": f'W/{etag}, "other"'})
        assert response.status_code == 304 and response.content == b""
        assert response.headers["ETag"] == etag
    assert web_session.get(path, headers={"If-None-Match": '"old"'}).status_code == 200

    # Routes outside the cache have ETags too.
    document = web_session.get("/api/openapi.json")
    again = web_session.get(
        "/api/openapi.json", headers={"If-None-Match": document.headers["ETag"]}
    )
    assert again.status_code == 304


def test_a_write_through_this_gateway_is_read_back_at_once(gateway, config, web_session):
    item = article()
    path = f"/api/articles/{item['id']}"
    web_session.get(path), web_session.get("/api/articles")
    # The stand-in publishes no event: only the gateway's own invalidation helps.
    changed = web_session.put(path, json={"title": "Changed"}, headers=admin(config))
    assert changed.status_code == 200

    assert web_session.get(path).json()["title"] == "Changed"
    assert web_session.get("/api/articles").json()[0]["title"] == "Changed"


@pytest.mark.parametrize("event_type", ["article_added", "article_updated", "article_deleted"])
def test_each_article_event_drops_the_item_and_the_lists(gateway, config, web_session, event_type):
    item, other = article(), article("Other")
    path, other_path = f"/api/articles/{item['id']}", f"/api/articles/{other['id']}"
    web_session.get(path), web_session.get("/api/articles")
    web_session.get(other_path)
    FakeArticles.items[item["id"]] = {**item, "title": "Changed elsewhere"}

    hear(gateway, config, event_type, FakeArticles.items[item["id"]])

    assert web_session.get(path).json()["title"] == "Changed elsewhere"
    listed = web_session.get("/api/articles")
    assert listed.headers["X-Cache"] == "miss"
    assert "Changed elsewhere" in [a["title"] for a in listed.json()]
    assert web_session.get(other_path).headers["X-Cache"] == "hit"


@pytest.mark.parametrize("event_type", ["user_added", "user_updated", "user_deleted"])
def test_each_user_event_drops_the_user(gateway, config, web_session, event_type):
    user = {"id": str(uuid.uuid4()), "firstName": "Ada", "emailAddress": "ada@x", "role": "regular"}
    FakeUsers.items[user["id"]] = user
    path = f"/api/users/{user['id']}"
    web_session.get(path)
    FakeUsers.items[user["id"]] = {**user, "firstName": "Grace"}

    hear(gateway, config, event_type, FakeUsers.items[user["id"]])
    assert web_session.get(path).json()["firstName"] == "Grace"


def test_private_fields_never_come_from_the_cache(gateway, config, web_session):
    user = {"id": str(uuid.uuid4()), "firstName": "Ada", "emailAddress": "ada@x", "role": "regular"}
    FakeUsers.items[user["id"]] = user
    path = f"/api/users/{user['id']}"

    anonymous = [web_session.get(path), web_session.get(path)]
    assert [r.headers["X-Cache"] for r in anonymous] == ["miss", "hit"]
    assert all("emailAddress" not in r.json() for r in anonymous)
    assert anonymous[1].headers["Vary"] == "Authorization"

    # With a token the answer is the caller's own: never from the cache, never kept.
    for _ in range(2):
        shown = web_session.get(path, headers=admin(config))
        assert shown.json()["emailAddress"] == "ada@x"
        assert shown.headers["X-Cache"] == "miss"
        assert shown.headers["Cache-Control"] == "private, no-cache"
    assert "emailAddress" not in web_session.get(path).json()
    assert "emailAddress" not in web_session.get("/api/users", headers={}).json()[0]


def test_eviction_at_the_entry_bound(gateway, web_session):
    items = [article(str(n)) for n in range(4)]  # the gateway keeps 3 answers
    for item in items:
        web_session.get(f"/api/articles/{item['id']}")
    assert web_session.get(f"/api/articles/{items[0]['id']}").headers["X-Cache"] == "miss"
    assert web_session.get(f"/api/articles/{items[3]['id']}").headers["X-Cache"] == "hit"


def test_errors_are_not_cached(gateway, web_session):
    missing = f"/api/articles/{uuid.uuid4()}"
    assert web_session.get(missing).status_code == 404
    response = web_session.get(missing)
    assert response.status_code == 404 and "X-Cache" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    assert CALLS["articles.get"] == 2


def raw_exchange(config, request, reads=1):
    host, port = config["WEB_SERVER_ADDRESS"].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while received.count(b"HTTP/1.") < reads or not received.endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def test_pipelined_hits_and_every_form_of_a_request_are_hits(gateway, config, web_session):
    item = article()
    path = f"/api/articles/{item['id']}".encode()
    web_session.get(path.decode())  # cached now
    get = b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n"

    # Two requests in one packet: both answered, in order, from the cache.
    answers = raw_exchange(config, get + get, reads=2)
    assert answers.count(b"HTTP/1.1 200 OK") == 2 and answers.count(b"X-Cache: hit") == 2

    # HTTP/1.0, Connection: close, an escaped path: one reading, the same hit.
    for request in (
        b"GET " + path + b" HTTP/1.0\r\n\r\n",
        b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET " + path.replace(b"/api", b"/%61pi") + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ):
        answer = raw_exchange(config, request)
        assert b" 200 OK" in answer and item["title"].encode() in answer
        assert b"X-Cache: hit" in answer
    assert CALLS["articles.get"] == 1
