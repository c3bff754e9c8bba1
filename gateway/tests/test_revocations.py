"""Refused tokens: kept as long as a token issued before them can live; none
trusted until the gateway knows them (unit level: auth's answer is mocked)."""

import eventlet
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
    yield provider  # (the container lives as long as the test: its provider's threads)
    provider.kill()


def claims(user_id, generation=0):
    return {"sub": user_id, "role": "regular", "gen": generation}


def test_deleted_users_and_tokens_of_an_older_generation_are_refused(auth):
    auth.user_deleted("gone")
    auth.user_updated("changed", 2)
    for refused in (claims("gone", 5), claims("changed", 0), claims("changed", 1)):
        with pytest.raises(Unauthorized):
            auth.check(refused)
    auth.check(claims("changed", 2))
    auth.check(claims("changed", 3))  # issued by an auth that heard of the change first
    auth.check(claims("someone-else"))


def test_a_generation_never_moves_backwards(auth):
    auth.user_updated("changed", 3)
    auth.user_updated("changed", 1)  # a late event
    auth._apply({"deleted": [], "generations": {"changed": 2}})  # an older answer of auth
    with pytest.raises(Unauthorized, match="password or role change"):
        auth.check(claims("changed", 2))


def test_revocations_are_forgotten_once_every_older_token_expired(auth):
    auth.user_deleted("gone")
    auth.user_updated("changed", 1)
    auth.clock[0] += TTL + 1  # every token issued before has expired now
    auth.user_deleted("later")  # any event prunes what is due

    assert set(auth.deleted) == {"later"} and auth.generations == {}
    auth.check(claims("gone"))  # forgotten: its tokens have all expired by now
    auth.check(claims("changed", 0))


@pytest.fixture
def auth_answers(auth, monkeypatch):
    """Auth's ``revocations()`` answers as each test's queue says, when it
    says (a pending answer is auth hanging)."""
    answers = eventlet.Queue()

    def fetch():
        answer = answers.get()
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(authentication, "RELOAD_DELAY_SECONDS", 0.01)
    monkeypatch.setattr(auth, "_fetch_revocations", fetch)
    monkeypatch.setattr(auth.broadcasts, "start", lambda: None)  # no broker here
    return answers


def wait_until(check):
    for _ in range(200):
        if check():
            return True
        eventlet.sleep(0.01)
    raise AssertionError(f"not true: {check}")


def test_tokens_are_not_trusted_until_the_revocations_are_loaded(auth, auth_answers):
    starting = eventlet.spawn(auth.start)
    eventlet.sleep(0.05)
    assert not auth.revocations_known  # auth has not answered
    assert not starting.dead  # the gateway's start waits for auth's first answer...
    auth_answers.put(ConnectionError("auth is away"))
    with eventlet.Timeout(1):
        starting.wait()  # ... or its first failure, no longer
    eventlet.sleep(0.05)
    assert not auth.revocations_known  # retried, still not answered
    assert "revoked tokens" in auth.waits_for()  # /readyz: no traffic meanwhile
    auth_answers.put({"deleted": ["gone"], "generations": {"changed": 1}})
    wait_until(lambda: auth.revocations_known)
    assert auth.waits_for() == ""
    with pytest.raises(Unauthorized):
        auth.check(claims("changed", 0))


def test_after_a_reconnect_tokens_wait_for_a_new_load(auth, auth_answers):
    auth_answers.put({"deleted": [], "generations": {}})
    auth.start()
    assert auth.revocations_known

    auth.reload_revocations()  # what the broadcast consumer calls when it reconnects
    assert not auth.revocations_known
    eventlet.sleep(0.05)  # auth asked, not answered yet
    auth.reload_revocations()  # reconnected again: the answer on its way may be stale
    auth_answers.put({"deleted": [], "generations": {}})
    eventlet.sleep(0.05)
    assert not auth.revocations_known
    auth_answers.put({"deleted": ["gone"], "generations": {}})
    wait_until(lambda: auth.revocations_known)
    with pytest.raises(Unauthorized):
        auth.check(claims("gone"))


def test_an_answer_of_auth_from_before_generations_refuses_deleted_users_only(auth, auth_answers):
    auth_answers.put({"deleted": ["gone"], "roles": {"promoted": "admin"}})
    auth.start()
    assert auth.revocations_known
    auth.check(claims("promoted"))
    with pytest.raises(Unauthorized):
        auth.check(claims("gone"))
