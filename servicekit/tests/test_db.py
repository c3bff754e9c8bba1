"""Pooled connections: checked only after sitting idle, replaced when dead."""

import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from servicekit.db import make_engine, ping_when_idle


def backend_pid(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar()


@pytest.fixture
def pool(kit_database_url, monkeypatch):
    """One pooled connection, and the pings it gets."""
    engine = make_engine(kit_database_url, pool_size=1, max_overflow=0)
    pings = []
    ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda conn: pings.append(1) or ping(conn))
    yield engine, pings
    engine.dispose()


def test_a_connection_used_a_moment_ago_is_not_pinged(pool):
    engine, pings = pool
    pids = {backend_pid(engine) for _ in range(3)}
    assert len(pids) == 1 and pings == []  # the same connection, never checked


def test_a_connection_killed_while_idle_is_replaced_not_raised(pool, kit_database_url):
    engine, pings = pool
    ping_when_idle(engine, idle_seconds=0)  # every reuse counts as after idling
    first = backend_pid(engine)
    killer = make_engine(kit_database_url, poolclass=NullPool)
    with killer.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    killer.dispose()

    assert backend_pid(engine) != first
    assert pings
