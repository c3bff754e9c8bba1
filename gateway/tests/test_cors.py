"""Cross-origin requests: allowed only for CORS_ORIGINS, off by default."""

import pytest

from gateway.service import GatewayService
from gateway.tests.test_read_cache import FakeArticles, FakeAuth, article


@pytest.fixture
def gateway(config, container_factory):
    def start(origins):
        for service in (FakeArticles, FakeAuth):
            container_factory(service, config).start()
        container_factory(GatewayService, {**config, "CORS_ORIGINS": origins}).start()

    return start


PREFLIGHT = {"Origin": "https://news.example", "Access-Control-Request-Method": "PUT"}


def test_off_by_default(gateway, web_session):
    gateway("")
    item = article()
    response = web_session.get(f"/api/articles/{item['id']}", headers={"Origin": "https://x.org"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert web_session.options("/api/articles", headers=PREFLIGHT).status_code == 405


def test_allowed_origins_get_the_headers_on_hits_misses_and_preflights(gateway, web_session):
    gateway("https://news.example, https://other.example")
    item = article()
    path = f"/api/articles/{item['id']}"
    for expected_cache in ("miss", "hit"):
        response = web_session.get(path, headers={"Origin": "https://news.example"})
        assert response.headers["X-Cache"] == expected_cache
        assert response.headers["Access-Control-Allow-Origin"] == "https://news.example"
        assert "ETag" in response.headers["Access-Control-Expose-Headers"]
        assert "Origin" in response.headers["Vary"]

    preflight = web_session.options(path, headers=PREFLIGHT)
    assert preflight.status_code == 204
    assert "PUT" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Idempotency-Key" in preflight.headers["Access-Control-Allow-Headers"]

    stranger = web_session.get(path, headers={"Origin": "https://evil.example"})
    assert stranger.status_code == 200 and "Access-Control-Allow-Origin" not in stranger.headers
    refused = web_session.options(path, headers={**PREFLIGHT, "Origin": "https://evil.example"})
    assert refused.status_code == 405
