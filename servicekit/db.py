"""Database helpers shared by every service's models."""

import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache

from nameko_sqlalchemy.database import Database as _Database
from nameko_sqlalchemy.database import DatabaseWrapper, Session
from sqlalchemy import DateTime, Uuid, bindparam, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import mapped_column, sessionmaker

from .config import database_url
from .errors import NotFound

ENGINE_OPTIONS = {"pool_size": 5, "max_overflow": 5}
# A pooled connection idle for longer is checked before use (see ping_when_idle).
PING_AFTER_IDLE_SECONDS = 5.0


def engine_url(url):
    """The contract's ``postgresql://`` URLs, on the pinned psycopg2 driver.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, which this
    project does not install.
    """
    url = make_url(url)
    return url.set(drivername="postgresql+psycopg2") if url.drivername == "postgresql" else url


def make_engine(url, **options):
    """An engine on ``url``; pass ``poolclass=NullPool`` for one-off scripts."""
    if "poolclass" in options:
        return create_engine(engine_url(url), **options)
    engine = create_engine(engine_url(url), **{**ENGINE_OPTIONS, **options})
    ping_when_idle(engine)
    return engine


def ping_when_idle(engine, idle_seconds=PING_AFTER_IDLE_SECONDS):
    """Check a pooled connection before use if it sat idle ``idle_seconds``.

    A restarted PostgreSQL leaves dead connections in the pool; a failed
    check replaces the connection instead of failing the request.
    SQLAlchemy's ``pool_pre_ping`` checks on every checkout: a round trip per
    request, during which psycopg2 holds the whole process. A connection in
    use a moment ago is alive; the one failure a restart can still cause
    makes SQLAlchemy replace every connection of the pool.
    """

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_connection, record):
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection, record, proxy):
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at < idle_seconds:
            return  # new, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"stale pooled connection: {exc}") from exc


def worker_pool_options(config):
    """Pool settings for connections used by workers: one per worker
    (nameko's ``max_workers``), and a little room for anything else."""
    return {"pool_size": int(config.get("max_workers") or 10), "max_overflow": 2}


class Database(_Database):
    """nameko-sqlalchemy's ``Database`` with this project's engine settings.

    ``self.db.session`` is the worker's ORM transaction, for changes (commit
    it yourself). ``self.db.reads`` is a Core connection for reads, in
    autocommit mode: a read costs its query alone, with no ``BEGIN`` or
    ``ROLLBACK`` round trip and no ORM objects (rows are mappings, which the
    wire schemas dump as they dump models). Measured on one article by id:
    about 240 µs of CPU against 470 µs through the ORM.
    """

    def setup(self):
        self.db_uri = database_url(self.container.config, self.container.service_name)
        # A connection for each worker that may run at once, kept: with a
        # smaller pool, busy moments closed the extra connections when they
        # came back and opened new ones a moment later (a PostgreSQL backend
        # started for ~3% of the reads under load).
        pool = worker_pool_options(self.container.config)
        self.engine = make_engine(self.db_uri, **pool)
        self.Session = sessionmaker(bind=self.engine, class_=Session)
        # Autocommit: nothing to roll back when a connection goes back either.
        self.read_engine = make_engine(
            self.db_uri, isolation_level="AUTOCOMMIT", pool_reset_on_return=None, **pool
        )

    def stop(self):
        super().stop()
        self.read_engine.dispose()

    kill = stop

    def get_dependency(self, worker_ctx):
        db = _WorkerDatabase(self.Session, self.read_engine)
        self.dbs[worker_ctx] = db
        return db


class _WorkerDatabase(DatabaseWrapper):
    def __init__(self, session_factory, read_engine):
        super().__init__(session_factory)
        self._read_engine = read_engine
        self._reads = None

    @property
    def reads(self):
        if self._reads is None:
            self._reads = self._read_engine.connect()
        return self._reads

    def close(self):
        super().close()
        if self._reads is not None:
            self._reads.close()

    def health(self):
        """``"ok"`` once the database answers; it raises otherwise."""
        self.reads.execute(select(1))
        return "ok"


# ``info`` of a column that reads leave out (a search index's vector, say).
INTERNAL = {"internal": True}


def readable_columns(model):
    return [column for column in model.__table__.c if not column.info.get("internal")]


@cache
def by_primary_key(model):
    """``SELECT`` of ``model``'s row whose ``id`` is the parameter ``id``,
    built once: building a statement costs as much as running it."""
    return select(*readable_columns(model)).where(model.__table__.c.id == bindparam("id"))


def utcnow():
    return datetime.now(UTC)


# The smallest step of a PostgreSQL timestamp.
_TICK = timedelta(microseconds=1)


def later_than(previous):
    """Now, or just after ``previous`` if a clock lags: an ``updatedDate``
    only moves forward, whichever copy of a service made the change (its
    readers, auth among them, keep the newest version by it)."""
    return max(utcnow(), previous + _TICK)


def id_column():
    return mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


def timestamp_column(**kwargs):
    return mapped_column(DateTime(timezone=True), nullable=False, default=utcnow, **kwargs)


def parse_id(value, resource="resource"):
    """An id from a client: unknown and malformed ids are both 404."""
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        raise NotFound(f"No {resource} with id {value!r}.") from None


def iso(dt):
    """ISO 8601 in UTC with a ``Z``, the wire format of every date."""
    return (
        dt.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z") if dt else None
    )
