"""The kit tested on its own: a scratch database with the kit's tables, and
a small service of the tests' own (``Probe``), never one of the project's."""

import os

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.pool import NullPool

from servicekit.config import database_key, load_config
from servicekit.db import make_engine
from servicekit.idempotency import ProcessedEventMixin
from servicekit.outbox import OutboxMixin
from servicekit.request_keys import RequestKeyMixin
from tools.migrations import create_database, drop_database

# The name of the tests' own service, and of its database's key in DB_URIS.
PROBE = "probe"


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class RequestKey(RequestKeyMixin, Base):
    pass


@pytest.fixture(scope="session")
def kit_database_url():
    """A database of the kit's tables, on the configured server, for this run."""
    server = next(iter(load_config()["DB_URIS"].values()))
    url = make_url(server).set(database=f"test_kit_{os.getpid()}")
    url = url.render_as_string(hide_password=False)
    drop_database(url)
    create_database(url)
    engine = make_engine(url, poolclass=NullPool)
    Base.metadata.create_all(engine)
    engine.dispose()
    yield url
    drop_database(url)


@pytest.fixture
def kit_session(kit_database_url):
    """``kit_session()``: a session on the emptied kit database."""
    engine = make_engine(kit_database_url, poolclass=NullPool)
    with engine.begin() as conn:
        names = ", ".join(table.name for table in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names}"))
    sessions = []

    def open_session():
        sessions.append(Session(engine))
        return sessions[-1]

    yield open_session
    for session in sessions:
        session.close()
    engine.dispose()


@pytest.fixture
def kit_config(config, kit_database_url, kit_session):
    """The test config, with the probe's database."""
    return {**config, "DB_URIS": {**config["DB_URIS"], database_key(PROBE): kit_database_url}}
