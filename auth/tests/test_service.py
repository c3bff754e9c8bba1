"""Auth in a real container: credentials from users events, login, throttling."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter

from auth.service import AuthService
from servicekit.errors import InvalidCredentials, TooManyRequests, ValidationError
from servicekit.passwords import hash_password
from servicekit.tokens import verify_token

# Recent: revocations are listed for JWT_TTL_SECONDS (a day) after they happen.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def user_event(user_id, *, at, email="reader@example.com", role="regular", password=None):
    data = {"id": str(user_id), "emailAddress": email, "role": role, "updatedDate": at.isoformat()}
    if password:
        data["passwordHash"] = hash_password(password)
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
    assert auth.revocations()["roles"] == {}


def test_delete_is_final_even_before_a_late_add(auth):
    user_id = uuid.uuid4()
    auth.deliver("user_deleted", user_event(user_id, at=T0 + timedelta(seconds=1)))
    auth.deliver("user_added", user_event(user_id, at=T0, password="pw pw pw"))

    with pytest.raises(InvalidCredentials):
        auth.login("reader@example.com", "pw pw pw")
    assert auth.revocations()["deleted"] == [str(user_id)]


def test_role_change_is_listed_for_gateways(auth):
    user_id = uuid.uuid4()
    auth.deliver("user_added", user_event(user_id, at=T0, password="pw pw pw"))
    auth.deliver("user_updated", user_event(user_id, at=T0 + timedelta(seconds=1), role="admin"))
    assert auth.revocations() == {"deleted": [], "roles": {str(user_id): "admin"}}


def test_revocations_older_than_a_token_lifetime_are_not_listed(auth):
    deleted, promoted = uuid.uuid4(), uuid.uuid4()
    two_days_ago = T0 - timedelta(days=2)
    auth.deliver("user_deleted", user_event(deleted, at=two_days_ago))
    auth.deliver("user_added", user_event(promoted, at=two_days_ago, password="pw pw pw"))
    auth.deliver(
        "user_updated", user_event(promoted, at=two_days_ago + timedelta(seconds=1), role="admin")
    )
    # Every token issued before these changes has expired: nothing to refuse.
    assert auth.revocations() == {"deleted": [], "roles": {}}


def test_malformed_input_is_refused_with_a_clear_error(auth):
    with pytest.raises(ValidationError) as err:
        auth.login(None, "x")
    assert "emailAddress" in err.value.details
    # A users event without an id becomes no credential; it is parked with its error.
    auth.deliver("user_added", {"eventId": str(uuid.uuid4()), "data": {}})
    assert auth.revocations() == {"deleted": [], "roles": {}}
    parked = auth.dead_letters_list()
    assert len(parked) == 1
    assert "malformed user_added" in parked[0]["lastError"]


def test_failed_logins_are_throttled_per_account(auth):
    user_id = uuid.uuid4()
    auth.deliver("user_added", user_event(user_id, at=T0, password="right pass"))
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            auth.login("reader@example.com", "wrong pass", client="10.0.0.1")
    with pytest.raises(TooManyRequests) as blocked:
        auth.login("reader@example.com", "right pass", client="10.0.0.2")
    assert 1 <= blocked.value.retry_after <= 30


def test_health_waits_for_an_admin_who_can_log_in(auth):
    assert auth.health() == "starting"
    auth.deliver("user_added", user_event(uuid.uuid4(), at=T0, password="pw pw pw"))
    assert auth.health() == "starting"  # a regular user is not enough
    auth.deliver("user_added", user_event(uuid.uuid4(), at=T0, email="root@x.org", role="admin"))
    assert auth.health() == "starting"  # an admin without a password cannot log in
    admin = user_event(uuid.uuid4(), at=T0, email="boss@x.org", role="admin", password="pw pw pw")
    auth.deliver("user_added", admin)
    assert auth.health() == "ok"
