"""Hostile input at the gateway: each a 4xx in the contract's shape, and
nothing reaches a service. The services behind are stand-ins that count
their calls (the gateway does not own them)."""

import json
from collections import Counter

import pytest

from gateway.service import GatewayService
from servicekit.rpc import rpc
from servicekit.tokens import issue_token
from tests.conftest import bearer

CALLS = Counter()


class RecordingArticles:
    name = "articles"

    @rpc
    def create(self, payload, request_key=None):
        CALLS["create"] += 1
        return {"id": "a1", **payload}

    @rpc
    def list(self, **params):
        CALLS["list"] += 1
        return {"items": [], "nextCursor": None}


class RecordingAuth:
    name = "auth"

    @rpc
    def login(self, email_address, password, client=None):
        CALLS["login"] += 1
        return {"auth": True, "token": "t", "expiresIn": 1}

    @rpc
    def revocations(self):
        return {"deleted": [], "roles": {}}


@pytest.fixture
def gateway(config, container_factory):
    CALLS.clear()
    for service in (RecordingArticles, RecordingAuth, GatewayService):
        container_factory(service, config).start()
    token = issue_token(
        config["JWT_SECRET"], user_id="u1", email="u@x", role="regular", ttl_seconds=600
    )
    return bearer(token)


def raw_post(web_session, path, data, headers, content_type="application/json"):
    return web_session.post(path, data=data, headers={**headers, "Content-Type": content_type})


ARTICLE = {"title": "T", "description": "D", "body": "B"}
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    "body, status, code",
    [
        pytest.param(json.dumps({**ARTICLE, "title": "a\u0000b"}), 400, "BAD_REQUEST", id="nul"),
        pytest.param('{"title": "\\ud800", "body": "B"}', 400, "BAD_REQUEST", id="lone-surrogate"),
        pytest.param('{"ti\\udfffle": "x"}', 400, "BAD_REQUEST", id="lone-surrogate-in-a-key"),
        pytest.param(
            json.dumps({**ARTICLE, "tags": ["ok", "n\u0000ul"]}),
            400,
            "BAD_REQUEST",
            id="nul-in-list",
        ),
        pytest.param('{"title": ' + DEEP + "}", 400, "BAD_REQUEST", id="nested-100000-deep"),
        pytest.param(
            json.dumps(
                {
                    **ARTICLE,
                    "meta": {
                        "a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]
                    },
                }
            ),
            400,
            "BAD_REQUEST",
            id="nested-34-deep",
        ),
        pytest.param('{"title": NaN}', 400, "BAD_REQUEST", id="nan"),
        pytest.param('{"status": Infinity}', 400, "BAD_REQUEST", id="infinity"),
        pytest.param('{"status": ' + "9" * 5000 + "}", 400, "BAD_REQUEST", id="5000-digit-number"),
        pytest.param(b"\xff\xfe", 400, "BAD_REQUEST", id="not-utf8"),
        pytest.param("[1, 2]", 400, "BAD_REQUEST", id="not-an-object"),
        pytest.param("", 400, "BAD_REQUEST", id="empty"),
        pytest.param("x" * (1024 * 1024 + 1), 413, "PAYLOAD_TOO_LARGE", id="over-1-mib"),
    ],
)
def test_hostile_body_is_a_4xx_and_reaches_no_service(gateway, web_session, body, status, code):
    response = raw_post(web_session, "/api/articles", body, gateway)
    assert (response.status_code, response.json()["error"]) == (status, code), response.text
    assert set(response.json()) == {"error", "message", "details"}
    assert CALLS["create"] == 0


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_body_that_is_not_json_is_415(gateway, web_session, content_type):
    response = raw_post(web_session, "/api/articles", json.dumps(ARTICLE), gateway, content_type)
    assert (response.status_code, response.json()["error"]) == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert CALLS["create"] == 0
    # JSON under another name is JSON.
    ok = raw_post(web_session, "/api/articles", json.dumps(ARTICLE), gateway, "application/x+json")
    assert ok.status_code == 201


@pytest.mark.parametrize(
    "query",
    ["tag=a%00b", "tag=%ED%A0%80x", "cursor=%00"],
    ids=["nul", "encoded-surrogate", "nul-cursor"],
)
def test_hostile_query_is_a_4xx(gateway, web_session, query):
    response = web_session.get(f"/api/articles?{query}")
    assert response.status_code in (200, 400), (
        response.text
    )  # an encoded surrogate decodes as U+FFFD
    if response.status_code == 400:
        assert response.json()["error"] == "BAD_REQUEST"
        assert CALLS["list"] == 0


def test_login_with_nul_or_unknown_fields_reaches_no_service(gateway, web_session):
    nul = web_session.post("/api/auth", json={"emailAddress": "a\u0000@x.org", "password": "p"})
    assert (nul.status_code, nul.json()["error"]) == (400, "BAD_REQUEST")
    extra = web_session.post("/api/auth", json={"emailAddress": "a@x", "password": "p", "x": 1})
    assert (extra.status_code, extra.json()["details"]) == (422, {"x": ["Unknown field."]})
    assert CALLS["login"] == 0


def test_a_malformed_idempotency_key_is_400(gateway, web_session):
    headers = {**gateway, "Idempotency-Key": "x" * 256}
    response = web_session.post("/api/articles", json=ARTICLE, headers=headers)
    assert (response.status_code, response.json()["error"]) == (400, "BAD_REQUEST")
    assert "Idempotency-Key" in response.json()["details"]


def test_every_answer_carries_the_security_headers(gateway, web_session):
    for response in (
        web_session.get("/api/articles"),
        web_session.get("/nowhere"),
        web_session.post("/api/articles", json=ARTICLE, headers=gateway),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
