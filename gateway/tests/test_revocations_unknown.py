"""A gateway that cannot ask auth which tokens are revoked trusts none.

The gateway runs for real (its container, HTTP server and broadcast queues on
the test vhost); users and auth are stand-ins it does not own. Auth is away,
or hangs, until the test lets it answer.
"""

import eventlet
import pytest

from gateway import authentication
from gateway.authentication import NOT_YET_KNOWN
from gateway.service import GatewayService
from servicekit.rpc import rpc
from servicekit.tokens import issue_token
from tests.conftest import bearer
from tests.support import eventually

USER = {"id": "u1", "firstName": "Ada", "emailAddress": "ada@example.com", "role": "regular"}


class StandInUsers:
    name = "users"

    @rpc
    def get(self, user_id):
        return USER

    @rpc
    def list(self, limit=None, cursor=None):
        return {"items": [USER], "nextCursor": None}

    @rpc
    def update(self, user_id, payload, request_key=None):
        return {**USER, **payload}


class HangingAuth:
    """Stands in for auth: ``revocations`` answers only once the test says."""

    name = "auth"
    hanging = True

    @rpc
    def revocations(self):
        while HangingAuth.hanging:
            eventlet.sleep(0.05)
        return {"deleted": [], "generations": {}}


@pytest.fixture
def gateway(config, container_factory, monkeypatch):
    # Give up on a hanging auth, and ask again, sooner than in production.
    monkeypatch.setattr(authentication, "REVOCATIONS_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(authentication, "RELOAD_DELAY_SECONDS", 0.1)
    HangingAuth.hanging = True
    container_factory(StandInUsers, config).start()
    container_factory(GatewayService, {**config, "CACHE_MAX_ENTRIES": 0}).start()
    secret = config["JWT_SECRET"]
    token = issue_token(
        secret, user_id="u1", email="ada@example.com", role="regular", ttl_seconds=60
    )
    return bearer(token)


def put_user(web_session, headers):
    return web_session.put("/api/users/u1", json={"firstName": "B"}, headers=headers)


def assert_tokens_wait_and_public_routes_answer_as_anonymous(web_session, token):
    for _ in range(3):  # not a moment's luck: it holds while auth is silent
        refused = put_user(web_session, token)
        assert (refused.status_code, refused.json()["error"]) == (503, "SERVICE_UNAVAILABLE")
        assert refused.json()["message"] == NOT_YET_KNOWN
        eventlet.sleep(0.2)
    # Public routes answer; a token there is taken as no token (no email shown).
    own = web_session.get("/api/users/u1", headers=token)
    assert own.status_code == 200 and "emailAddress" not in own.json()
    listed = web_session.get("/api/users", headers=token)
    assert listed.status_code == 200 and "emailAddress" not in listed.json()[0]
    # What is wrong whatever auth says is still a 401.
    assert put_user(web_session, {}).status_code == 401
    assert put_user(web_session, bearer("not.a.token")).status_code == 401


def assert_tokens_are_trusted_again(web_session, token):
    eventually(lambda: put_user(web_session, token).status_code == 200, timeout=5)
    assert web_session.get("/api/users/u1", headers=token).json()["emailAddress"]


def test_tokens_are_refused_with_503_while_auth_is_away_then_trusted_once_it_answers(
    gateway, web_session, config, container_factory
):
    assert_tokens_wait_and_public_routes_answer_as_anonymous(web_session, gateway)
    HangingAuth.hanging = False
    container_factory(HangingAuth, config).start()
    assert_tokens_are_trusted_again(web_session, gateway)


def test_tokens_are_refused_with_503_while_auth_hangs_then_trusted_once_it_answers(
    gateway, web_session, config, container_factory
):
    container_factory(HangingAuth, config).start()
    assert_tokens_wait_and_public_routes_answer_as_anonymous(web_session, gateway)
    HangingAuth.hanging = False
    assert_tokens_are_trusted_again(web_session, gateway)
