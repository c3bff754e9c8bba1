"""The users service in a real container, on the real broker and database."""

from datetime import datetime, timedelta

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import select

from servicekit import db
from servicekit.errors import BadRequest, Conflict, NotFound, ValidationError
from servicekit.passwords import verify_password
from users.models import OutboxMessage, User
from users.service import UsersService

NEW_USER = {
    "firstName": "Ada",
    "lastName": "Lovelace",
    "emailAddress": "ada@example.com",
    "description": "Analyst",
    "password": "correct horse",
}


@pytest.fixture
def users(config, container_factory):
    container = container_factory(UsersService, config)
    container.start()
    with ServiceRpcProxy("users", config) as proxy:
        yield proxy


def test_create_hashes_password_and_writes_event(users, db_session):
    created = users.create(NEW_USER)

    assert created["emailAddress"] == "ada@example.com"
    assert created["role"] == "regular"
    assert created["meta"] == {"likes": 0}
    assert "password" not in created and "passwordHash" not in created
    session = db_session("users")
    user = session.scalar(select(User).where(User.email_address == "ada@example.com"))
    assert verify_password("correct horse", user.password_hash)
    events = [row.payload for row in session.scalars(select(OutboxMessage))]
    added = [e for e in events if e["data"]["id"] == created["id"]]
    assert len(added) == 1
    assert added[0]["data"]["passwordHash"] == user.password_hash


def test_seeds_admin_once(users, db_session):
    admins = db_session("users").scalars(select(User).where(User.role == "admin")).all()
    assert [a.email_address for a in admins] == ["admin@example.com"]


def test_duplicate_email_ignoring_case_is_conflict(users):
    users.create(NEW_USER)
    with pytest.raises(Conflict):
        users.create({**NEW_USER, "emailAddress": "ADA@Example.com"})


def test_validation_errors_name_each_field(users):
    with pytest.raises(ValidationError) as err:
        users.create({"firstName": "", "emailAddress": "nope", "password": "short"})
    details = err.value.details
    assert set(details) == {"firstName", "lastName", "emailAddress", "password"}


def test_body_must_be_an_object(users):
    with pytest.raises(BadRequest):
        users.create(["not", "an", "object"])


def test_update_changes_only_sent_fields(users):
    created = users.create(NEW_USER)
    updated = users.update(created["id"], {"lastName": "King"})
    assert updated["lastName"] == "King"
    assert updated["firstName"] == "Ada"
    assert updated["updatedDate"] > created["updatedDate"]


def test_unknown_and_malformed_ids_are_not_found(users):
    for bad_id in ("00000000-0000-0000-0000-000000000000", "not-an-id"):
        with pytest.raises(NotFound):
            users.get(bad_id)


def test_list_pages_newest_first(users):
    ids = [users.create({**NEW_USER, "emailAddress": f"u{i}@example.com"})["id"] for i in range(5)]
    first = users.list(limit=2)
    second = users.list(limit=2, cursor=first["nextCursor"])
    seen = [u["id"] for u in first["items"] + second["items"]]
    assert seen == list(reversed(ids))[:4]


def test_tampered_cursor_is_bad_request(users):
    for i in range(3):
        users.create({**NEW_USER, "emailAddress": f"u{i}@example.com"})
    cursor = users.list(limit=1)["nextCursor"]
    with pytest.raises(BadRequest):
        users.list(limit=1, cursor=cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1])


def test_delete_returns_user_and_removes_it(users):
    created = users.create(NEW_USER)
    deleted = users.delete(created["id"])
    assert deleted["id"] == created["id"]
    with pytest.raises(NotFound):
        users.get(created["id"])


def test_updated_date_only_moves_forward_even_with_a_clock_that_lags(users, monkeypatch):
    created = users.create(NEW_USER)
    frozen = datetime.fromisoformat(created["updatedDate"].replace("Z", "+00:00"))
    # Another copy of the service whose clock is behind this one's.
    monkeypatch.setattr(db, "utcnow", lambda: frozen - timedelta(minutes=5))
    first = users.update(created["id"], {"firstName": "Ada"})
    second = users.update(created["id"], {"firstName": "Augusta"})
    assert created["updatedDate"] < first["updatedDate"] < second["updatedDate"]


def test_a_password_or_role_change_moves_the_token_generation_on_in_its_event(users, db_session):
    created = users.create(NEW_USER)
    changes = [
        ({"lastName": "King"}, 0),  # neither: tokens stay good
        ({"password": "another horse"}, 1),
        ({"password": "another horse"}, 2),  # a password sent is a password change
        ({"role": "admin"}, 3),
        ({"role": "admin", "description": "Same role"}, 3),
        ({"role": "regular"}, 4),
    ]
    for change, _ in changes:
        answer = users.update(created["id"], change)
        assert "tokenGeneration" not in answer  # services only, never an API answer

    session = db_session("users")
    user = session.get(User, created["id"])
    assert user.token_generation == 4
    events = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    data = [e.payload["data"] for e in events if e.payload["data"]["id"] == created["id"]]
    assert [d["tokenGeneration"] for d in data] == [0] + [generation for _, generation in changes]
    assert "tokenGeneration" not in users.get(created["id"])
    assert "tokenGeneration" not in users.list()["items"][0]
