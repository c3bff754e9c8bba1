"""servicekit.effects on the real PostgreSQL: the record of an effect done
is committed once the database answers again, and nothing else is retried."""

import itertools
import logging
import uuid
from unittest.mock import Mock

import psycopg2
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from servicekit.effects import commit_after_effect, growing_delays
from servicekit.idempotency import claim_event

from .broken_commits import TerminatedCommits
from .conftest import ProcessedEvent

QUICKLY = itertools.repeat(0.01)


@pytest.fixture
def marks(kit_session, kit_database_url):
    """``marks(count)``: a session holding one event's claim (not committed
    yet) whose next ``count`` commits are terminated; returns
    ``(session, record, breaker)``."""
    breakers = []

    def make(count, **kwargs):
        session = kit_session()
        payload = {"eventId": str(uuid.uuid4())}

        def record(fresh):
            claim_event(fresh, ProcessedEvent, payload, "mailer")

        breaker = TerminatedCommits(
            session.get_bind(), kit_database_url, "processed_events", count, **kwargs
        )
        breakers.append(breaker)
        record(session)
        return session, record, breaker

    yield make
    for breaker in breakers:
        breaker.remove()


def stored(kit_session):
    return kit_session().scalar(select(func.count()).select_from(ProcessedEvent))


def test_a_record_whose_commit_is_cut_off_is_retried_until_stored(marks, kit_session, caplog):
    session, record, breaker = marks(3)

    with caplog.at_level(logging.INFO, logger="servicekit.effects"):
        retries = commit_after_effect(session, record, "the mark", delays=QUICKLY)

    assert retries == 3
    assert len(set(breaker.terminated)) == 3  # a new connection each time
    assert stored(kit_session) == 1
    lines = [r for r in caplog.records if r.name == "servicekit.effects"]
    warnings = [r for r in lines if r.levelno == logging.WARNING]
    assert [r.exc_info for r in warnings] == [None] * 3  # one line each, no traceback
    for n, line in enumerate(warnings, start=1):
        message = line.getMessage()
        assert message.startswith("the mark not stored: the database cannot be reached (")
        assert "terminating connection" in message or "closed the connection" in message
        assert message.endswith(f"; retry {n} in 0.01 s")
        assert "\n" not in message
    assert lines[-1].getMessage() == "the mark stored after 3 retries"


def test_a_commit_that_succeeded_with_its_answer_lost_is_stored_once(marks, kit_session):
    session, record, breaker = marks(1, answer_lost=True)

    assert commit_after_effect(session, record, "the mark", delays=QUICKLY) == 1

    assert breaker.terminated and stored(kit_session) == 1


def test_a_commit_that_works_is_not_retried(marks, kit_session):
    session, record, _ = marks(0)

    assert commit_after_effect(session, record, "the mark", delays=QUICKLY) == 0
    assert stored(kit_session) == 1


def test_it_gives_up_when_the_delays_run_out(marks, kit_session):
    session, record, breaker = marks(5)

    with pytest.raises(OperationalError):
        commit_after_effect(session, record, "the mark", delays=[0.01, 0.01])

    assert len(breaker.terminated) == 3  # the commit, then two retries
    assert stored(kit_session) == 0


def test_a_failure_no_wait_can_cure_raises_at_once():
    session = Mock()
    session.commit.side_effect = IntegrityError("COMMIT", {}, psycopg2.IntegrityError("dup"))
    record = Mock()

    with pytest.raises(IntegrityError):
        commit_after_effect(session, record, "the mark", delays=QUICKLY)

    record.assert_not_called()
    session.commit.assert_called_once()


def test_the_default_delays_grow_to_a_ceiling():
    assert list(itertools.islice(growing_delays(0.2, 1.0), 5)) == [0.2, 0.4, 0.8, 1.0, 1.0]
