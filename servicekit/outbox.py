"""Transactional outbox: an event is committed with the change it announces.

A write adds the event row in the same session and transaction as its data
(``self.change.announce(...)``, :mod:`servicekit.writes`). After the worker
returns, the rows it added are claimed and marked sent in one statement,
published with publisher confirms and persistent delivery, and the mark
committed; a failed publish rolls the mark back. Rows that could not be
published (broker down, process killed) are swept up by a background loop in
every replica. Published rows are pruned after 7 days
(:mod:`servicekit.retention`).

Ordering: a row is published only once every earlier row of the same
aggregate (resource) has been, so consumers see a resource's events in commit
order. Concurrency between replicas is settled with ``FOR UPDATE SKIP
LOCKED``; a crash between the publish and the commit of its mark gives
at-least-once delivery, which the consumers' idempotency (by ``eventId``)
absorbs.
"""

import logging
import uuid
from weakref import WeakKeyDictionary

import eventlet
from kombu import Connection
from kombu.pools import producers
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    DEFAULT_TRANSPORT_OPTIONS,
    LOGIN_METHOD_CONFIG_KEY,
    PERSISTENT,
    SERIALIZER_CONFIG_KEY,
)
from nameko.events import get_event_exchange
from nameko.extensions import Extension
from nameko.messaging import HeaderEncoder
from sqlalchemy import BigInteger, DateTime, Identity, Index, String, Uuid, insert, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from .db import DatabaseEngine, iso, utcnow
from .logs import Trouble
from .metrics import REPORTED
from .retention import PrunedTable

log = logging.getLogger(__name__)
OUTBOX_METRICS = REPORTED.kind("outbox", gauges={"backlog": "Events committed, not yet published."})

SWEEP_INTERVAL_SECONDS = 1.0
BATCH_SIZE = 200
# Published rows are kept this long (to look into), then pruned, a batch at a
# time, so the table does not grow for ever.
RETENTION_DAYS = 7


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


# Oldest unpublished row of each aggregate, skipping rows another relay
# holds, marked published in the statement that claims it: the mark is
# undone if the publish fails (the transaction rolls back), and one
# statement does what a claim and a mark did in two.
_CLAIM_SQL = """
UPDATE {table} SET published_at = now()
WHERE id IN (
  SELECT o.id FROM {table} o
  WHERE o.published_at IS NULL {only_mine}
    AND NOT EXISTS (
      SELECT 1 FROM {table} p
      WHERE p.aggregate_id = o.aggregate_id AND p.published_at IS NULL AND p.id < o.id)
  ORDER BY o.id
  LIMIT :batch
  FOR UPDATE SKIP LOCKED)
RETURNING id, event_type, payload, headers
"""


class Outbox(Extension, HeaderEncoder):
    """The relay of the service's outbox table (``Outbox(OutboxMessage)``),
    inside :class:`servicekit.writes.Changes`: :meth:`add` puts an event in a
    worker's transaction, :meth:`relay_added` publishes what a worker added
    once it returned, a sweeper what is left."""

    database = DatabaseEngine()

    def __init__(self, model, sweep_interval=SWEEP_INTERVAL_SECONDS):
        self.model = model
        self.sweep_interval = sweep_interval
        self.published = PrunedTable(model, "published_at", days=RETENTION_DAYS)
        self._added = WeakKeyDictionary()
        self._sweeper = None
        # Set while the last relay failed (broker or database down): then
        # the sweeper alone retries, see worker_result.
        self._failing = False
        self._trouble = Trouble(log)

    def setup(self):
        config = self.container.config
        service_name = self.container.service_name
        self.database.setup()
        self.engine = self.database.engine
        self.exchange = get_event_exchange(service_name, config)
        self.publisher = ConfirmedPublisher(config, self.exchange)
        table = self.model.__table__.name
        self._claim_mine = text(
            _CLAIM_SQL.format(table=table, only_mine="AND o.event_id = ANY(:ids)")
        )
        self._claim_any = text(_CLAIM_SQL.format(table=table, only_mine=""))
        self._insert = insert(self.model.__table__)
        self._backlog = text(f"SELECT count(*) FROM {table} WHERE published_at IS NULL")
        OUTBOX_METRICS.watch(self)

    def start(self):
        self._sweeper = self.container.spawn_managed_thread(self._sweep_forever)

    def stop(self):
        if self._sweeper is not None:
            self._sweeper.kill()

    kill = stop

    def add(self, session, worker_ctx, event_type, aggregate_id, data):
        """Add the event to ``session``; it is published once committed.
        Returns its payload."""
        headers = self.get_message_headers(worker_ctx)
        values = outbox_values(event_type, aggregate_id, data, headers)
        session.execute(self._insert, values)  # Core: no ORM unit of work for one row
        self._added.setdefault(worker_ctx, []).append(values["event_id"])
        return values["payload"]

    def relay_added(self, worker_ctx):
        """After the worker returned (its ``worker_result``): publish what it
        added. Decided from the database, not from how the worker ended: a
        commit followed by an exception must still publish, a rolled-back row
        finds nothing. While the last relay failed, the sweeper alone
        retries: a worker does not wait for kombu's connect timeout after
        each write of an outage."""
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
                for row in sorted(rows, key=lambda row: row.id):  # RETURNING keeps no order
                    self.publisher.publish(row.payload, row.event_type, row.headers)
        except Exception as exc:  # broker or database down: the sweeper retries
            self._failing = True
            self._trouble.occurred("outbox: publishing deferred (%s: %s)", type(exc).__name__, exc)
            return 0
        self._failing = False
        self._trouble.over("outbox: publishing again")
        return len(rows)

    def stats(self):
        return {"backlog": self.backlog()}

    def backlog(self):
        """Events committed but not yet published (``None`` if unknown)."""
        try:
            with self.engine.connect() as conn:
                return conn.execute(self._backlog).scalar()
        except Exception:
            return None

    def _sweep_forever(self):
        while True:
            # Each round sends the oldest pending event of each aggregate;
            # loop at once while there is a backlog, sleep when there is none.
            if not self.relay():
                eventlet.sleep(self.sweep_interval)


class ConfirmedPublisher:
    """Events to ``exchange``: persistent, confirmed by the broker, through
    kombu's producer pool (a connection for each concurrent publisher, as
    nameko's ``Publisher`` has), the pool looked up once rather than from a
    connection object made for every publish. No retry policy: a failure
    raises at once, and the sweeper publishes the row once the broker is
    back. (kombu still tries to connect for up to 4 s.)"""

    def __init__(self, config, exchange):
        connection = Connection(
            config["AMQP_URI"],
            transport_options={**DEFAULT_TRANSPORT_OPTIONS, "confirm_publish": True},
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )
        self.producers = producers[connection]
        self.exchange = exchange
        self.serializer = config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER)

    def publish(self, payload, routing_key, headers):
        with self.producers.acquire(block=True) as producer:
            producer.publish(
                payload,
                exchange=self.exchange,
                routing_key=routing_key,
                headers=headers,
                delivery_mode=PERSISTENT,
                declare=[self.exchange],
                serializer=self.serializer,
                retry=False,
            )


def outbox_row(model, event_type, aggregate_id, data, headers=None):
    """An outbox row carrying the contract's event payload.

    Outside a worker (a start-up seed, say) add it to the session yourself;
    the sweeper publishes it within a second of the commit.
    """
    return model(**outbox_values(event_type, aggregate_id, data, headers))


def outbox_values(event_type, aggregate_id, data, headers=None):
    """The columns of an outbox row carrying the contract's event payload."""
    event_id, now = uuid.uuid4(), utcnow()
    return {
        "event_id": event_id,
        "event_type": event_type,
        "aggregate_id": str(aggregate_id),
        "payload": {"eventId": str(event_id), "occurredAt": iso(now), "data": data},
        "headers": headers or {},
        "created_at": now,
    }
