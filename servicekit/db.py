"""Database helpers shared by every service's models."""

import re
import time
import uuid
import weakref
from datetime import UTC, datetime, timedelta
from functools import cache

import psycopg2
from nameko.extensions import SharedExtension
from nameko_sqlalchemy.database import Database as _Database
from nameko_sqlalchemy.database import DatabaseWrapper, Session
from sqlalchemy import DateTime, Uuid, bindparam, create_engine, event, select
from sqlalchemy.dialects.postgresql import psycopg2 as psycopg2_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import mapped_column, sessionmaker

from .config import database_url
from .errors import NotFound

ENGINE_OPTIONS = {"pool_size": 5, "max_overflow": 5}
# The setting that bounds each statement of a read connection (milliseconds;
# 0: no bound).
READ_TIMEOUT_KEY = "READ_TIMEOUT_MS"
DEFAULT_READ_TIMEOUT_MS = 2000
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


def pool_sizes(config):
    """``(transactions, reads)`` pool settings of a service process: a
    connection kept for each worker (nameko's ``max_workers``), and for the
    background loops on the transactional side, with room for moments when a
    write worker holds two (its transaction, then the outbox relay's)."""
    workers = int(config.get("max_workers") or 10)
    transactions = {"pool_size": workers + 2, "max_overflow": workers + 4}
    reads = {"pool_size": workers, "max_overflow": 2}
    return transactions, reads


def read_timeout_options(url, config):
    """Engine options that give every connection a ``statement_timeout`` of
    ``READ_TIMEOUT_MS``: PostgreSQL cancels a statement that runs longer
    (SQLSTATE 57014, which callers get as an ``ServiceUnavailable``, see
    :mod:`servicekit.database_errors`). Set when the connection opens, as a
    startup option: no round trip of its own. ``options`` already in the
    URL are kept."""
    milliseconds = int(config.get(READ_TIMEOUT_KEY, DEFAULT_READ_TIMEOUT_MS) or 0)
    if milliseconds <= 0:
        return {}
    options = " ".join(
        filter(None, [make_url(url).query.get("options"), f"-c statement_timeout={milliseconds}"])
    )
    return {"connect_args": {"options": options}}


class DatabaseEngine(SharedExtension):
    """A service process's database, shared by everything that connects to
    it: the workers' :class:`Database`, the outbox relay, the pruners, the
    start-up steps; nothing else opens connections.

    ``engine`` for transactions; ``reads``, connections in autocommit mode (a
    read costs its query alone: no ``BEGIN``/``ROLLBACK`` round trip), whose
    statements PostgreSQL cancels after ``READ_TIMEOUT_MS``
    (:func:`read_timeout_options`; transactions have no such bound: a change
    is not cut short). They are two pools: switching one pool's connections
    between the two modes costs two ``set_isolation_level`` calls a checkout,
    measured at ~55 µs of CPU, more than half of what the switch saves.

    A connection for each worker is kept: with a smaller pool, busy moments
    closed the extra connections when they came back and opened new ones a
    moment later (a PostgreSQL backend started for ~3% of reads under load).
    """

    def setup(self):
        if getattr(self, "engine", None) is not None:
            return  # set up once, whoever asks first
        config = self.container.config
        url = database_url(config, self.container.service_name)
        transactions, reads = pool_sizes(config)
        self.engine = make_engine(url, **transactions)
        self.reads = make_engine(
            url,
            isolation_level="AUTOCOMMIT",
            pool_reset_on_return=None,
            **read_timeout_options(url, config),
            **reads,
        )

    def stop(self):
        if getattr(self, "engine", None) is not None:
            self.engine.dispose()
            self.reads.dispose()
            self.engine = self.reads = None

    kill = stop


class Database(_Database):
    """nameko-sqlalchemy's ``Database`` on the process's :class:`DatabaseEngine`.

    ``self.db.session`` is the worker's ORM transaction, for changes (commit
    it yourself). ``self.db.reads`` is a Core connection for reads, in
    autocommit mode: a read costs its query alone, with no ``BEGIN`` or
    ``ROLLBACK`` round trip and no ORM objects (rows are mappings, which the
    wire schemas dump as they dump models). Measured on one article by id:
    about 240 µs of CPU against 470 µs through the ORM.
    """

    database = DatabaseEngine()

    def setup(self):
        self.database.setup()
        self.engine = self.database.engine
        self.Session = sessionmaker(bind=self.engine, class_=Session)

    def stop(self):
        pass  # the engine is the DatabaseEngine's

    kill = stop

    def get_dependency(self, worker_ctx):
        db = _WorkerDatabase(self.Session, self.database.reads)
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


class PreparedRead:
    """A read that PostgreSQL parses and plans once per connection, run on
    the driver's own cursor: ``PreparedRead("article_by_id",
    by_primary_key(Article))``, then ``.first(self.db.reads, id=...)``.

    Each connection ``PREPARE``s the statement the first time it runs it
    (a round trip, once), then ``EXECUTE``s it: PostgreSQL skips parsing and
    planning, and the service skips SQLAlchemy's statement execution (its
    compiled-cache lookup, parameter and result processing), ~40% of a
    read by id in the service. Rows come back as mappings of column name to
    the driver's values, as SQLAlchemy's engine sets the driver up (a
    ``uuid`` as ``uuid.UUID``). Not for a connection pooler in transaction mode
    (PgBouncer's), which does not keep a statement on its server
    connections; PostgreSQL's own connections keep it until they close.
    """

    def __init__(self, name, statement):
        self.name = name
        compiled = statement.compile(dialect=psycopg2_dialect.dialect())
        self.parameters = list(compiled.params)
        number = {name: index + 1 for index, name in enumerate(self.parameters)}
        # psycopg2's %(name)s placeholders become PostgreSQL's $n.
        sql = re.sub(r"%\((\w+)\)s", lambda match: f"${number[match[1]]}", compiled.string)
        self._prepare = f"PREPARE {name} AS {sql.replace('%%', '%')}"
        placeholders = ", ".join(["%s"] * len(self.parameters))
        self._execute = f"EXECUTE {name}({placeholders})" if placeholders else f"EXECUTE {name}"
        self.columns = [column.key for column in statement.selected_columns]
        self._prepared_on = weakref.WeakSet()  # the driver's connections that have it

    def all(self, reads, **params):
        """Every row, as mappings."""
        connection = reads.connection.dbapi_connection
        try:
            with connection.cursor() as cursor:
                if connection not in self._prepared_on:
                    cursor.execute(self._prepare)
                    self._prepared_on.add(connection)
                cursor.execute(self._execute, [params[name] for name in self.parameters])
                rows = cursor.fetchall()
        except psycopg2.Error:
            # What SQLAlchemy does for its own statements: a connection
            # found dead is dropped from the pool, not handed out again.
            if connection.closed:
                reads.invalidate()
            raise
        columns = self.columns
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def first(self, reads, **params):
        """The first row, or ``None``."""
        rows = self.all(reads, **params)
        return rows[0] if rows else None


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
