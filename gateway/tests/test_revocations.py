"""Refused tokens: kept as long as a token issued before them can live."""

import pytest
from nameko.containers import ServiceContainer

from gateway import authentication
from gateway.authentication import Authenticator
from gateway.service import GatewayService
from servicekit.errors import Unauthorized

TTL = 3600


@pytest.fixture
def auth(monkeypatch):
    clock = [1_000_000.0]
    monkeypatch.setattr(authentication.time, "time", lambda: clock[0])
    config = {"AMQP_URI": "memory://", "JWT_SECRET": "s" * 32, "JWT_TTL_SECONDS": TTL}
    container = ServiceContainer(GatewayService, config)
    (provider,) = [d for d in container.dependencies if isinstance(d, Authenticator)]
    provider.setup()
    provider.clock = clock
    return provider


def claims(user_id, role="regular"):
    return {"sub": user_id, "role": role}


def test_deleted_users_and_changed_roles_are_refused(auth):
    auth.user_deleted("gone")
    auth.user_updated("promoted", "admin")
    for refused in (claims("gone"), claims("promoted", "regular")):
        with pytest.raises(Unauthorized):
            auth.check(refused)
    auth.check(claims("promoted", "admin"))
    auth.check(claims("someone-else"))


def test_revocations_are_forgotten_once_every_older_token_expired(auth):
    auth.user_deleted("gone")
    auth.user_updated("promoted", "admin")
    auth.clock[0] += TTL + 1  # every token issued before has expired now
    auth.user_deleted("later")  # any event prunes what is due

    assert set(auth.deleted) == {"later"} and auth.roles == {}
    auth.check(claims("gone"))  # forgotten: its tokens have all expired by now
