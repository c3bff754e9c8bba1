"""The gateway never hangs: 503 for a missing service, 504 for a slow one."""

import time

import eventlet
import pytest
from sqlalchemy.exc import OperationalError

from gateway.service import GatewayService
from servicekit.rpc import rpc
from tests.support import eventually


class SlowUsers:
    """Stands in for users: answers list after a delay the test sets."""

    name = "users"
    delay = 0.0

    @rpc
    def list(self, **params):
        eventlet.sleep(SlowUsers.delay)
        return {"items": [], "nextCursor": None}

    @rpc
    def health(self):
        return "ok"


@pytest.fixture
def gateway(config, container_factory):
    # Without the read cache: every request here must reach the service.
    config = {**config, "RPC_TIMEOUT_SECONDS": 0.5, "CACHE_MAX_ENTRIES": 0}
    container = container_factory(GatewayService, config)
    container.start()
    return config


def test_missing_service_is_503_at_once(gateway, web_session):
    started = time.monotonic()
    response = web_session.get("/api/users")
    assert response.status_code == 503
    assert response.json()["error"] == "SERVICE_UNAVAILABLE"
    assert time.monotonic() - started < 0.5


def test_slow_service_is_504_then_recovers(gateway, web_session, container_factory):
    users = container_factory(SlowUsers, gateway)
    users.start()
    SlowUsers.delay = 1.0
    started = time.monotonic()
    response = web_session.get("/api/users")
    assert response.status_code == 504
    assert response.json()["error"] == "GATEWAY_TIMEOUT"
    assert time.monotonic() - started < 1.0

    SlowUsers.delay = 0.0
    assert web_session.get("/api/users").status_code == 200


def test_stopped_service_is_503_without_waiting(gateway, web_session, container_factory):
    users = container_factory(SlowUsers, gateway)
    users.start()
    SlowUsers.delay = 0.0
    assert web_session.get("/api/users").status_code == 200
    users.stop()  # its durable queue stays behind, with no consumer

    eventually(lambda: web_session.get("/api/users").status_code == 503, timeout=3)
    health = web_session.get("/health")
    assert health.status_code == 503
    assert health.json()["services"]["users"] == "unavailable"
    assert health.json()["status"] == "degraded"


class UsersWithoutDatabase:
    """Stands in for users whose database is down: what SQLAlchemy raises."""

    name = "users"

    @rpc
    def list(self, **params):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    @rpc
    def health(self):
        return "ok"


def test_a_service_without_its_database_is_503_not_500(gateway, web_session, container_factory):
    container_factory(UsersWithoutDatabase, gateway).start()
    response = web_session.get("/api/users")
    assert (response.status_code, response.json()["error"]) == (503, "SERVICE_UNAVAILABLE")
