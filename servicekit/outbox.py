"""Transactional outbox: an event is committed with the change it announces.

A service adds the event row in the same session and transaction as its data
(``self.outbox.add(session, ...)``). After the worker returns, the rows it
added are published with publisher confirms and persistent delivery, then
marked sent. Rows that could not be published (broker down, process killed)
are swept up by a background loop in every replica.

Ordering: a row is published only once every earlier row of the same
aggregate (resource) has been, so consumers see a resource's events in commit
order. Concurrency between replicas is settled with ``FOR UPDATE SKIP
LOCKED``; a crash between publish and mark gives at-least-once delivery, which
the consumers' idempotency (by ``eventId``) absorbs.
"""

import logging
import time
import uuid
from weakref import WeakKeyDictionary

import eventlet
from nameko.amqp.publish import Publisher
from nameko.constants import PERSISTENT
from nameko.events import get_event_exchange
from nameko.extensions import DependencyProvider
from nameko.messaging import HeaderEncoder
from sqlalchemy import BigInteger, DateTime, Identity, Index, String, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from .config import database_url
from .db import iso, make_engine, utcnow
from .logs import Trouble
from .metrics import REPORTED

log = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 1.0
BATCH_SIZE = 200
# Published rows are kept this long (to look into), then deleted by the
# sweeper, a batch at a time, so the table does not grow for ever.
RETENTION = "7 days"
PRUNE_INTERVAL_SECONDS = 60.0
PRUNE_BATCH = 1000


class OutboxMixin:
    """Columns of a service's ``outbox`` table; the service adds its Base."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, nullable=False)
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    aggregate_id: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict] = mapped_column(JSONB, nullable=False)
    headers: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)
    created_at = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    published_at = mapped_column(DateTime(timezone=True), nullable=True)

    @declared_attr.directive
    def __table_args__(cls):  # noqa: N805 - SQLAlchemy passes the class
        return (
            Index(
                "ix_outbox_unpublished",
                "aggregate_id",
                "id",
                postgresql_where=text("published_at IS NULL"),
            ),
        )


# Oldest unpublished row of each aggregate, skipping rows another relay holds.
_CLAIM_SQL = """
SELECT o.id, o.event_type, o.payload, o.headers FROM {table} o
WHERE o.published_at IS NULL {only_mine}
  AND NOT EXISTS (
    SELECT 1 FROM {table} p
    WHERE p.aggregate_id = o.aggregate_id AND p.published_at IS NULL AND p.id < o.id)
ORDER BY o.id
LIMIT :batch
FOR UPDATE SKIP LOCKED
"""


class Outbox(DependencyProvider, HeaderEncoder):
    """``self.outbox.add(session, event_type, aggregate_id, data)`` in a worker.

    ``Outbox(OutboxMessage)``: the service's outbox model, in its database.
    """

    def __init__(self, model, sweep_interval=SWEEP_INTERVAL_SECONDS):
        self.model = model
        self.sweep_interval = sweep_interval
        self._added = WeakKeyDictionary()
        self._sweeper = None
        # Set while the last relay failed (broker or database down): then
        # the sweeper alone retries, see worker_result.
        self._failing = False
        self._trouble = Trouble(log)

    def setup(self):
        config = self.container.config
        service_name = self.container.service_name
        self.engine = make_engine(database_url(config, service_name))
        self.exchange = get_event_exchange(service_name, config)
        # retry=False: no retry policy; the sweeper publishes the row once the
        # broker is back. (kombu still tries to connect for up to 4 s.)
        self.publisher = Publisher(
            config["AMQP_URI"],
            use_confirms=True,
            delivery_mode=PERSISTENT,
            declare=[self.exchange],
            retry=False,
        )
        table = self.model.__table__.name
        self._claim_mine = text(
            _CLAIM_SQL.format(table=table, only_mine="AND o.event_id = ANY(:ids)")
        )
        self._claim_any = text(_CLAIM_SQL.format(table=table, only_mine=""))
        self._mark = text(f"UPDATE {table} SET published_at = now() WHERE id = ANY(:ids)")
        self._backlog = text(f"SELECT count(*) FROM {table} WHERE published_at IS NULL")
        REPORTED.outboxes.add(self)
        # Oldest ids first on the primary key: stops after one batch of matches.
        self._prune = text(
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} "
            f"WHERE published_at < now() - interval '{RETENTION}' ORDER BY id LIMIT {PRUNE_BATCH})"
        )

    def start(self):
        self._sweeper = self.container.spawn_managed_thread(self._sweep_forever)

    def stop(self):
        if self._sweeper is not None:
            self._sweeper.kill()
        self.engine.dispose()

    kill = stop

    def get_dependency(self, worker_ctx):
        return _WorkerOutbox(self, worker_ctx)

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        # Decide from the database, not from exc_info: a commit followed by an
        # exception must still publish, a rolled-back row finds nothing.
        # While the last relay failed, the sweeper alone retries: a worker does
        # not wait for kombu's connect timeout after each write of an outage.
        event_ids = self._added.pop(worker_ctx, None)
        if event_ids and not self._failing:
            self.relay(event_ids)

    def relay(self, event_ids=None):
        """Publish unsent rows (only ``event_ids`` if given); return the count.

        Never raises: an exception in a ``worker_result`` hook would kill
        the whole container.
        """
        try:
            with self.engine.begin() as conn:
                if event_ids is None:
                    rows = conn.execute(self._claim_any, {"batch": BATCH_SIZE}).all()
                else:
                    params = {"ids": list(event_ids), "batch": BATCH_SIZE}
                    rows = conn.execute(self._claim_mine, params).all()
                for row in rows:
                    self.publisher.publish(
                        row.payload,
                        exchange=self.exchange,
                        routing_key=row.event_type,
                        extra_headers=row.headers,
                    )
                if rows:
                    conn.execute(self._mark, {"ids": [row.id for row in rows]})
        except Exception as exc:  # broker or database down: the sweeper retries
            self._failing = True
            self._trouble.occurred("outbox: publishing deferred (%s: %s)", type(exc).__name__, exc)
            return 0
        self._failing = False
        self._trouble.over("outbox: publishing again")
        return len(rows)

    def backlog(self):
        """Events committed but not yet published (``None`` if unknown)."""
        try:
            with self.engine.connect() as conn:
                return conn.execute(self._backlog).scalar()
        except Exception:
            return None

    def prune(self):
        """Delete one batch of rows published before the retention; the count."""
        try:
            with self.engine.begin() as conn:
                return conn.execute(self._prune).rowcount
        except Exception as exc:
            self._trouble.occurred("outbox: pruning deferred (%s: %s)", type(exc).__name__, exc)
            return 0

    def _sweep_forever(self):
        next_prune = 0.0
        while True:
            # Each round sends the oldest pending event of each aggregate;
            # loop at once while there is a backlog, sleep when there is none.
            if self.relay():
                continue
            if time.monotonic() >= next_prune:
                if self.prune() < PRUNE_BATCH:
                    next_prune = time.monotonic() + PRUNE_INTERVAL_SECONDS
                continue
            eventlet.sleep(self.sweep_interval)


class _WorkerOutbox:
    def __init__(self, provider, worker_ctx):
        self._provider = provider
        self._worker_ctx = worker_ctx

    def add(self, session, event_type, aggregate_id, data):
        """Add the event to ``session``; it is published once committed."""
        headers = self._provider.get_message_headers(self._worker_ctx)
        row = outbox_row(self._provider.model, event_type, aggregate_id, data, headers)
        session.add(row)
        self._provider._added.setdefault(self._worker_ctx, []).append(row.event_id)
        return row.payload


def outbox_row(model, event_type, aggregate_id, data, headers=None):
    """An outbox row carrying the contract's event payload.

    Outside a worker (a start-up seed, say) add it to the session yourself;
    the sweeper publishes it within a second of the commit.
    """
    event_id = uuid.uuid4()
    return model(
        event_id=event_id,
        event_type=event_type,
        aggregate_id=str(aggregate_id),
        payload={"eventId": str(event_id), "occurredAt": iso(utcnow()), "data": data},
        headers=headers or {},
    )
