"""A broker out of reach is a 503 with ``Retry-After`` wherever it surfaces,
never a 500: a request's publish, a reply awaited when the connection drops,
``/health``; and calls go through again once the broker is back.

The gateway reaches the broker through a :class:`TcpProxy` the test cuts;
the stand-in users service reaches it directly, as it would on another node.
"""

from urllib.parse import urlsplit

import eventlet
import kombu.exceptions
import pytest

from gateway.errors import error_response
from gateway.service import GatewayService
from gateway.tests.test_deadlines import SlowUsers
from servicekit.rpc import DirectReplyCalls
from tests.faults.proxy import TcpProxy
from tests.support import eventually


@pytest.fixture
def broker_line(config, container_factory):
    url = urlsplit(config["AMQP_URI"])
    proxy = TcpProxy((url.hostname, url.port or 5672))
    SlowUsers.delay = 0.0
    container_factory(SlowUsers, config).start()
    # A deadline far away: a 503 below is the lost connection, never the deadline.
    behind = {**config, "AMQP_URI": proxy.url(config["AMQP_URI"]), "RPC_TIMEOUT_SECONDS": 30}
    gateway = container_factory(GatewayService, {**behind, "CACHE_MAX_ENTRIES": 0})
    gateway.start()
    yield proxy
    proxy.restore()  # the gateway stops as it would with its broker there
    gateway.stop()
    proxy.close()


def assert_unavailable(answer):
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    assert answer.json()["error"] == "SERVICE_UNAVAILABLE"


def test_requests_while_the_broker_is_away_are_503_and_pass_once_it_is_back(
    broker_line, web_session
):
    assert web_session.get("/api/users").status_code == 200
    broker_line.cut()
    for _ in range(3):  # the first meets the dying connection, the others none
        assert_unavailable(web_session.get("/api/users"))
    health = web_session.get("/health")
    assert health.status_code == 503 and health.headers["Retry-After"] == "1"
    assert health.json()["services"]["users"] == "unavailable"
    broker_line.restore()
    eventually(lambda: web_session.get("/api/users").status_code == 200, timeout=10)


def test_a_call_waiting_for_its_reply_when_the_connection_drops_is_503_at_once(
    broker_line, web_session
):
    SlowUsers.delay = 2.0
    waiting = eventlet.spawn(web_session.get, "/api/users")
    eventlet.sleep(0.5)  # the request is with the service now
    broker_line.cut()
    assert_unavailable(waiting.wait())  # not a 504 at the 30 s deadline


def test_a_broker_error_raised_anywhere_is_503_not_500():
    answer = error_response(kombu.exceptions.OperationalError("[Errno 111] Connection refused"))
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    assert answer.json["error"] == "SERVICE_UNAVAILABLE"


def test_a_call_without_a_reply_in_time_moves_the_next_calls_to_a_new_channel(
    config, container_factory, web_session
):
    SlowUsers.delay = 0.0
    container_factory(SlowUsers, config).start()
    settings = {**config, "RPC_TIMEOUT_SECONDS": 0.5, "CACHE_MAX_ENTRIES": 0}
    gateway = container_factory(GatewayService, settings)
    gateway.start()
    calls = next(ext for ext in gateway.extensions if isinstance(ext, DirectReplyCalls))
    first = calls.channel
    SlowUsers.delay = 1.0
    assert web_session.get("/api/users").status_code == 504
    eventually(lambda: calls.channel is not first, timeout=3)
    SlowUsers.delay = 0.0
    assert web_session.get("/api/users").status_code == 200
