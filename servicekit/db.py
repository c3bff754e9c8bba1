"""Database helpers shared by every service's models."""

import uuid
from datetime import UTC, datetime

from nameko_sqlalchemy.database import DB_URIS_KEY, Session
from nameko_sqlalchemy.database import Database as _Database
from sqlalchemy import DateTime, Uuid, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, mapped_column, sessionmaker

from .errors import NotFound

# Stale pooled connections (a restarted PostgreSQL) are replaced, not raised.
ENGINE_OPTIONS = {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 5}


class Base(DeclarativeBase):
    """Marker only; each service declares its own ``Base`` (own database)."""

    __abstract__ = True


def engine_url(url):
    """The contract's ``postgresql://`` URLs, on the pinned psycopg2 driver.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, which this
    project does not install.
    """
    url = make_url(url)
    return url.set(drivername="postgresql+psycopg2") if url.drivername == "postgresql" else url


def make_engine(url, **options):
    """An engine on ``url``; pass ``poolclass=NullPool`` for one-off scripts."""
    defaults = {} if "poolclass" in options else ENGINE_OPTIONS
    return create_engine(engine_url(url), **{**defaults, **options})


class Database(_Database):
    """nameko-sqlalchemy's ``Database`` with this project's engine settings."""

    def __init__(self, declarative_base):
        super().__init__(declarative_base, engine_options=ENGINE_OPTIONS)

    def setup(self):
        key = f"{self.container.service_name}:{self.declarative_base.__name__}"
        self.db_uri = self.container.config[DB_URIS_KEY][key]
        self.engine = make_engine(self.db_uri)
        self.Session = sessionmaker(bind=self.engine, class_=Session)


def utcnow():
    return datetime.now(UTC)


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
