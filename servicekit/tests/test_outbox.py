"""The outbox relay on a real database: order per resource, locks, pruning.

The publisher is replaced by a recorder (the broker side is covered by the
service and fault tests); everything else is the real SQL.
"""

from datetime import timedelta
from unittest.mock import Mock

import pytest
from sqlalchemy import select, text

from servicekit.db import utcnow
from servicekit.outbox import Outbox, outbox_row

from .conftest import PROBE, OutboxMessage


@pytest.fixture
def outbox(kit_config):
    container = Mock(config=kit_config, service_name=PROBE, shared_extensions={})
    provider = Outbox(OutboxMessage).bind(container)
    provider.setup()
    provider.published.setup()
    provider.publisher = Mock()
    yield provider
    provider.database.stop()


def add_rows(session, *aggregates):
    rows = [
        outbox_row(OutboxMessage, f"event_{i}", aggregate, {"n": i})
        for i, aggregate in enumerate(aggregates)
    ]
    session.add_all(rows)
    session.commit()
    return rows


def published(outbox):
    return [call.args[1] for call in outbox.publisher.publish.call_args_list]


def test_each_round_sends_the_oldest_pending_event_of_each_resource(outbox, kit_session):
    add_rows(kit_session(), "a", "a", "b", "a")

    rounds = []
    while count := outbox.relay():
        rounds.append(count)

    assert rounds == [2, 1, 1]
    assert published(outbox) == ["event_0", "event_2", "event_1", "event_3"]
    session = kit_session()
    assert session.scalar(select(OutboxMessage).where(OutboxMessage.published_at.is_(None))) is None


def test_a_resource_held_by_another_relay_waits(outbox, kit_session):
    rows = add_rows(kit_session(), "a", "a", "b")
    holder = kit_session()
    holder.execute(
        text("SELECT id FROM outbox WHERE event_id = :id FOR UPDATE"), {"id": rows[0].event_id}
    )

    assert outbox.relay() == 1  # only b: a's first row is locked, its second must wait
    assert published(outbox) == ["event_2"]
    holder.rollback()
    assert outbox.relay() == 1 and outbox.relay() == 1
    assert published(outbox) == ["event_2", "event_0", "event_1"]


def test_only_the_workers_own_rows_on_the_fast_path(outbox, kit_session):
    rows = add_rows(kit_session(), "a", "b")
    assert outbox.relay([rows[1].event_id]) == 1
    assert published(outbox) == ["event_1"]


def test_a_failed_publish_leaves_the_row_for_the_sweeper(outbox, kit_session):
    add_rows(kit_session(), "a")
    outbox.publisher.publish.side_effect = ConnectionError("broker down")
    assert outbox.relay() == 0
    outbox.publisher.publish.side_effect = None
    assert outbox.relay() == 1


def test_prune_deletes_only_old_published_rows(outbox, kit_session):
    session = kit_session()
    old, recent, pending = add_rows(session, "a", "b", "c")
    session.execute(
        text("UPDATE outbox SET published_at = :at WHERE event_id = :id"),
        [
            {"at": utcnow() - timedelta(days=8), "id": old.event_id},
            {"at": utcnow() - timedelta(days=1), "id": recent.event_id},
        ],
    )
    session.commit()

    assert outbox.published.pruner.prune(outbox.engine) == 1
    left = session.scalars(select(OutboxMessage.event_id)).all()
    assert sorted(map(str, left)) == sorted([str(recent.event_id), str(pending.event_id)])
