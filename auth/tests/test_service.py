"""Auth in a real container: credentials from users events, login, throttling."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter
from sqlalchemy import func, update

from auth.models import Credential, LoginThrottle
from auth.service import AuthService
from servicekit.errors import InvalidCredentials, TooManyRequests, ValidationError
from servicekit.passwords import hash_password
from servicekit.tokens import verify_token

# Recent: revocations are listed for JWT_TTL_SECONDS (a day) after they happen.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def user_event(
    user_id, *, at, email="reader@example.com", role="regular", password=None, generation=None
):
    data = {"id": str(user_id), "emailAddress": email, "role": role, "updatedDate": at.isoformat()}
    if password:
        data["passwordHash"] = hash_password(password)
    if generation is not None:
        data["tokenGeneration"] = generation
    return {"eventId": str(uuid.uuid4()), "occurredAt": at.isoformat(), "data": data}


@pytest.fixture
def auth(config, container_factory):
    container = container_factory(AuthService, config)
    container.start()
    dispatch = event_dispatcher(config)

    def deliver(event_type, payload):
        handler = {
            "user_added": "on_user_added",
            "user_updated": "on_user_updated",
            "user_deleted": "on_user_deleted",
        }[event_type]
        with entrypoint_waiter(container, handler):
            dispatch("users", event_type, payload)

    with ServiceRpcProxy("auth", config) as proxy:
        proxy.deliver = deliver
        yield proxy


def test_user_added_then_login_gives_token_with_contract_claims(auth, config):
    user_id = uuid.uuid4()
    auth.deliver("user_added", user_event(user_id, at=T0, password="secret pass"))

    result = auth.login("READER@example.com", "secret pass")

    assert result["auth"] is True and result["expiresIn"] == 86400
    claims = verify_token(config["JWT_SECRET"], result["token"])
    assert claims["sub"] == str(user_id)
    assert claims["email"] == "reader@example.com"
    assert claims["role"] == "regular"
    assert claims["gen"] == 0
    assert claims["exp"] - claims["iat"] == 86400


def test_redelivered_event_changes_nothing_twice(auth):
    user_id = uuid.uuid4()
    added = user_event(user_id, at=T0, password="first pass")
    auth.deliver("user_added", added)
    auth.deliver(
        "user_updated", user_event(user_id, at=T0 + timedelta(seconds=1), password="second pass")
    )
    auth.deliver("user_added", added)  # the same eventId again

    auth.login("reader@example.com", "second pass")
    with pytest.raises(InvalidCredentials):
        auth.login("reader@example.com", "first pass")


def test_update_before_add_ends_in_the_newest_state(auth):
    user_id = uuid.uuid4()
    auth.deliver(
        "user_updated",
        user_event(user_id, at=T0 + timedelta(seconds=5), email="new@example.com", role="admin"),
    )
    auth.deliver(
        "user_added", user_event(user_id, at=T0, email="old@example.com", password="pw pw pw")
    )

    token = auth.login("new@example.com", "pw pw pw")["token"]
    assert token
    with pytest.raises(InvalidCredentials):
        auth.login("old@example.com", "pw pw pw")
    assert auth.revocations()["generations"] == {}


def test_delete_is_final_even_before_a_late_add(auth):
    user_id = uuid.uuid4()
    auth.deliver("user_deleted", user_event(user_id, at=T0 + timedelta(seconds=1)))
    auth.deliver("user_added", user_event(user_id, at=T0, password="pw pw pw"))

    with pytest.raises(InvalidCredentials):
        auth.login("reader@example.com", "pw pw pw")
    assert auth.revocations()["deleted"] == [str(user_id)]


def test_a_moved_token_generation_is_in_new_tokens_and_listed_for_gateways(auth, config):
    user_id = uuid.uuid4()
    auth.deliver("user_added", user_event(user_id, at=T0, password="pw pw pw", generation=0))
    assert auth.revocations() == {"deleted": [], "generations": {}}
    changed = user_event(user_id, at=T0 + timedelta(seconds=1), role="admin", generation=1)
    auth.deliver("user_updated", changed)

    assert auth.revocations() == {"deleted": [], "generations": {str(user_id): 1}}
    claims = verify_token(
        config["JWT_SECRET"], auth.login("reader@example.com", "pw pw pw")["token"]
    )
    assert (claims["role"], claims["gen"]) == ("admin", 1)


def test_the_token_generation_only_moves_forward(auth, config):
    user_id = uuid.uuid4()
    auth.deliver("user_added", user_event(user_id, at=T0, password="pw pw pw", generation=0))
    later = user_event(user_id, at=T0 + timedelta(seconds=2), password="new pw pw", generation=2)
    earlier = user_event(user_id, at=T0 + timedelta(seconds=1), role="admin", generation=1)
    auth.deliver("user_updated", later)
    auth.deliver("user_updated", earlier)  # late
    auth.deliver("user_updated", later)  # twice
    # An event from before generations (none in it) leaves the generation alone.
    auth.deliver("user_updated", user_event(user_id, at=T0 + timedelta(seconds=3)))

    assert auth.revocations()["generations"] == {str(user_id): 2}
    claims = verify_token(
        config["JWT_SECRET"], auth.login("reader@example.com", "new pw pw")["token"]
    )
    assert claims["gen"] == 2


def test_revocations_older_than_a_token_lifetime_are_not_listed(auth, db_session):
    deleted, promoted = uuid.uuid4(), uuid.uuid4()
    two_days_ago = T0 - timedelta(days=2)
    auth.deliver("user_deleted", user_event(deleted, at=two_days_ago))
    auth.deliver("user_added", user_event(promoted, at=two_days_ago, password="pw pw pw"))
    auth.deliver(
        "user_updated",
        user_event(promoted, at=two_days_ago + timedelta(seconds=1), role="admin", generation=1),
    )
    # Auth learnt the generation when it heard the event: as if two days ago.
    session = db_session("auth")
    session.execute(update(Credential).values(tokens_valid_from=func.now() - timedelta(days=2)))
    session.commit()
    # Every token issued before these changes has expired: nothing to refuse.
    assert auth.revocations() == {"deleted": [], "generations": {}}


def test_malformed_input_is_refused_with_a_clear_error(auth):
    with pytest.raises(ValidationError) as err:
        auth.login(None, "x")
    assert "emailAddress" in err.value.details
    # A users event without an id becomes no credential; it is parked with its error.
    auth.deliver("user_added", {"eventId": str(uuid.uuid4()), "data": {}})
    assert auth.revocations() == {"deleted": [], "generations": {}}
    parked = auth.dead_letters_list()
    assert len(parked) == 1
    assert "malformed user_added" in parked[0]["lastError"]


@pytest.fixture
def reader(auth):
    auth.deliver("user_added", user_event(uuid.uuid4(), at=T0, password="right pass"))
    return "reader@example.com"


def fail(auth, email, client, times=1):
    for _ in range(times):
        with pytest.raises(InvalidCredentials):
            auth.login(email, "wrong pass", client=client)


def test_a_strangers_failures_do_not_block_the_owner_from_another_address(auth, reader):
    fail(auth, reader, "203.0.113.9", times=5)
    with pytest.raises(TooManyRequests):
        auth.login(reader, "wrong pass", client="203.0.113.9")
    assert auth.login(reader, "right pass", client="10.0.0.2")["auth"] is True


def test_five_failures_from_one_address_block_the_account_from_that_address(auth, reader):
    fail(auth, reader, "10.0.0.1", times=5)
    with pytest.raises(TooManyRequests) as blocked:
        auth.login(reader, "right pass", client="10.0.0.1")  # the right password too
    assert 1 <= blocked.value.retry_after <= 30


def test_the_account_ceiling_blocks_the_account_from_every_address(auth, reader, db_session):
    # 99 failures from many addresses within the window (faster than 99 logins).
    session = db_session("auth")
    session.add(
        LoginThrottle(key=f"account:{reader}", failures=99, window_started_at=datetime.now(UTC))
    )
    session.commit()
    assert auth.login(reader, "right pass", client="10.0.1.1")["auth"] is True  # below it
    fail(auth, reader, "10.0.1.2")  # the hundredth
    for client in ("10.0.1.3", "10.0.1.1", None):
        with pytest.raises(TooManyRequests):
            auth.login(reader, "right pass", client=client)


def test_a_successful_login_clears_its_pairs_count(auth, reader):
    fail(auth, reader, "10.0.0.1", times=4)
    auth.login(reader, "right pass", client="10.0.0.1")
    fail(auth, reader, "10.0.0.1", times=4)  # 8 in all, but 4 since the success
    assert auth.login(reader, "right pass", client="10.0.0.1")["auth"] is True


def test_a_client_address_over_64_characters_is_refused(auth, reader):
    with pytest.raises(ValidationError) as err:
        auth.login(reader, "right pass", client="x" * 65)
    assert "client" in err.value.details


def test_health_waits_for_an_admin_who_can_log_in(auth):
    assert auth.health() == "starting"
    auth.deliver("user_added", user_event(uuid.uuid4(), at=T0, password="pw pw pw"))
    assert auth.health() == "starting"  # a regular user is not enough
    auth.deliver("user_added", user_event(uuid.uuid4(), at=T0, email="root@x.org", role="admin"))
    assert auth.health() == "starting"  # an admin without a password cannot log in
    admin = user_event(uuid.uuid4(), at=T0, email="boss@x.org", role="admin", password="pw pw pw")
    auth.deliver("user_added", admin)
    assert auth.health() == "ok"
