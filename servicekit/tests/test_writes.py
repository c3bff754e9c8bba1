"""``@writes`` on a service of the tests' own, on the real broker and the kit's
database: the change, its event and the request key's answer are committed
together, or none of them."""

from datetime import timedelta

import pytest
from nameko.exceptions import IncorrectSignature
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import func, select, update

from servicekit.base import ServiceBase
from servicekit.errors import Conflict, ValidationError
from servicekit.logs import CONTEXT_KEY
from servicekit.rpc import rpc
from servicekit.writes import Changes, writes
from tests.support import event_tap

from .conftest import PROBE, OutboxMessage, RequestKey


class Writer(ServiceBase):
    name = PROBE

    change = Changes(OutboxMessage, RequestKey)

    @rpc
    @writes
    def note(self, text, fail=False):
        answer = self.change.announce("noted", "n1", {"text": text})
        if fail:
            raise Conflict("Refused after announcing.")
        return answer


@pytest.fixture
def writer(kit_config, container_factory):
    container_factory(Writer, kit_config).start()
    with ServiceRpcProxy(PROBE, kit_config) as proxy:
        yield proxy


def rows(kit_session):
    return kit_session().scalar(select(func.count()).select_from(OutboxMessage))


def key(name, fingerprint="f1"):
    return {"caller": "tests", "key": name, "fingerprint": fingerprint, "seconds": 60}


def test_the_change_commits_with_its_event_which_is_published(writer, kit_config, kit_session):
    with event_tap(kit_config, PROBE) as tap:
        assert writer.note("hello") == {"text": "hello"}
        [(kind, payload)] = tap.take(1)
    assert (kind, payload["data"]) == ("noted", {"text": "hello"})
    assert rows(kit_session) == 1


def test_a_repeated_request_key_gets_the_first_answer_and_does_nothing(writer, kit_session):
    assert writer.note("first", request_key=key("k1")) == {"text": "first"}
    assert writer.note("first", request_key=key("k1")) == {"text": "first"}
    assert rows(kit_session) == 1
    with pytest.raises(ValidationError, match="another request"):  # the same key, another body
        writer.note("first", request_key=key("k1", fingerprint="f2"))


def test_a_write_that_fails_commits_nothing(writer, kit_session):
    with pytest.raises(Conflict):
        writer.note("never", fail=True, request_key=key("k2"))
    assert rows(kit_session) == 0
    assert writer.note("again", request_key=key("k2")) == {"text": "again"}  # the key is free


def test_a_call_that_does_not_fit_the_signature_is_refused_as_such(writer):
    with pytest.raises(IncorrectSignature):
        writer.note()
    with pytest.raises(IncorrectSignature):
        writer.note("a", unknown=1)


def test_an_expired_key_is_taken_over_by_the_next_request(writer, kit_session):
    assert writer.note("old", request_key=key("k3")) == {"text": "old"}
    session = kit_session()
    session.execute(update(RequestKey).values(expires_at=func.now() - timedelta(seconds=1)))
    session.commit()
    # Expired: the request runs again, and the key keeps the new answer.
    assert writer.note("new", request_key=key("k3", fingerprint="f2")) == {"text": "new"}
    assert writer.note("new", request_key=key("k3", fingerprint="f2")) == {"text": "new"}
    assert rows(kit_session) == 2
    stored = kit_session().execute(select(RequestKey.fingerprint, RequestKey.answer)).one()
    assert tuple(stored) == ("f2", {"text": "new"})


def test_a_write_called_without_a_correlation_id_gives_its_events_the_one_it_made(
    writer, kit_session
):
    writer.note("traced")  # nameko's proxy sends no correlation id
    (headers,) = kit_session().scalars(select(OutboxMessage.headers)).all()
    correlation_id = headers[f"nameko.{CONTEXT_KEY}"]
    assert isinstance(correlation_id, str) and len(correlation_id) >= 16
