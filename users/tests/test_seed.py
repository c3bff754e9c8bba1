"""The admin account is seeded exactly once, however many copies start."""

import eventlet
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from users.dependencies import seed_admin
from users.models import OutboxMessage, User


def test_concurrent_seeds_create_one_admin_and_one_event(db_session):
    engine = db_session("users").get_bind()

    def seed():
        with Session(engine) as session:
            return seed_admin(session, "Admin@Example.com", "an admin password")

    results = [thread.wait() for thread in [eventlet.spawn(seed) for _ in range(8)]]

    session = db_session("users")
    assert results.count(True) == 1
    assert session.scalar(select(func.count()).select_from(User)) == 1
    events = session.scalars(select(OutboxMessage)).all()
    assert [event.event_type for event in events] == ["user_added"]
    assert events[0].payload["data"]["role"] == "admin"
    assert "passwordHash" in events[0].payload["data"]
    assert events[0].payload["data"]["tokenGeneration"] == 0
    # A second start with another address or password changes nothing.
    with Session(engine) as other:
        assert seed_admin(other, "admin@example.com", "something else") is False
