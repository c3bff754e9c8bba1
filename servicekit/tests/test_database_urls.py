"""Database URLs that name several servers (libpq's multi-host form, so that
a promoted standby takes over): read, passed on to libpq whole, and told
apart when they fail."""

import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from servicekit.config import database_key, database_servers, database_url, libpq_url, server_names
from servicekit.database_errors import NO_PRIMARY, NOT_RUNNING, diagnose, service_error
from servicekit.db import make_engine
from servicekit.errors import ServiceUnavailable
from tests.support import free_port

TWO = [("a", 5432), ("b", 5433)]


@pytest.mark.parametrize(
    ("url", "servers"),
    [
        ("postgresql://u:p@localhost:5432/db", [("localhost", 5432)]),
        ("postgresql://u:p@localhost/db", [("localhost", None)]),
        ("postgresql:///db", [(None, None)]),
        ("postgresql://u:p@/db?host=/var/run/postgresql", [("/var/run/postgresql", None)]),
        # libpq's own URI form, which SQLAlchemy cannot read.
        ("postgresql://u:p@a:5432,b:5433/db?target_session_attrs=read-write", TWO),
        ("postgresql://u:p@/db?host=a:5432,b:5433&target_session_attrs=read-write", TWO),
        ("postgresql://u:p@/db?host=a,b&port=5432,5433", TWO),
        ("postgresql://u:p@/db?host=a:5432&host=b:5433", TWO),
        ("postgresql://u:p@/db?host=a,b&port=5433", [("a", 5433), ("b", 5433)]),
        ("postgresql://u:p@[::1]:5433,b/db", [("::1", 5433), ("b", None)]),
    ],
)
def test_the_servers_of_each_form(url, servers):
    assert database_servers(url) == servers
    # Once in the form given to SQLAlchemy, the same servers, in order.
    assert database_servers(libpq_url(url)) == servers


def test_messages_name_every_server():
    assert server_names("postgresql://u:p@/db?host=a:5432,b:5433") == "a:5432, b:5433"
    assert server_names("postgresql://u:p@[::1],b:5433/db") == "[::1]:5432, b:5433"
    assert server_names("postgresql:///db") == "the local socket:5432"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://localnews:localnews@localhost:5432/probe",
        "postgresql://u:p%40ss@db.example/news?sslmode=require",
        "postgresql://u:p@/db?host=/var/run/postgresql",
    ],
)
def test_a_url_of_one_server_is_left_as_it_is(url):
    assert libpq_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p%40ss@a:5432,b:5433/db?target_session_attrs=read-write",
        "postgresql://u:p%40ss@/db?host=a:5432,b:5433&target_session_attrs=read-write",
        "postgresql://u:p%40ss@/db?host=a,b&port=5432,5433&target_session_attrs=read-write",
    ],
)
def test_libpq_gets_every_host_with_its_port(url):
    engine = make_engine(libpq_url(url), poolclass=NullPool)
    _, arguments = engine.dialect.create_connect_args(engine.url)

    assert arguments["host"] == "a,b"
    assert arguments["port"] == "5432,5433"
    assert arguments["target_session_attrs"] == "read-write"
    assert (arguments["user"], arguments["password"], arguments["dbname"]) == ("u", "p@ss", "db")


def test_the_services_get_the_url_in_that_form():
    url = "postgresql://u:p@/probe?host=a:5432,b:5433&target_session_attrs=read-write"
    config = {"DB_URIS": {database_key("probe"): url}}

    assert database_url(config, "probe") == (
        "postgresql://u:p@/probe?host=a,b&port=5432,5433&target_session_attrs=read-write"
    )


def several(kit_database_url, *ports, **query):
    """The kit database's URL naming 127.0.0.1 on ``ports`` first, then its own server."""
    url = make_url(kit_database_url)
    hosts = ",".join([*(f"127.0.0.1:{port}" for port in ports), f"{url.host}:{url.port or 5432}"])
    params = "".join(f"&{key}={value}" for key, value in query.items())
    return f"postgresql://{url.username}:{url.password}@/{url.database}?host={hosts}{params}"


def test_a_server_that_is_down_is_skipped_for_the_next(kit_database_url):
    url = several(kit_database_url, free_port(), target_session_attrs="read-write")
    engine = make_engine(libpq_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT NOT pg_is_in_recovery()")).scalar()
    finally:
        engine.dispose()


def test_every_server_down_is_not_running_and_unreachable(kit_database_url):
    second = free_port()
    kit = make_url(kit_database_url)
    url = (
        f"postgresql://{kit.username}:{kit.password}@/{kit.database}"
        f"?host=127.0.0.1:{free_port()},127.0.0.1:{second}"
    )
    engine = make_engine(libpq_url(url), poolclass=NullPool)
    try:
        with pytest.raises(Exception) as caught:
            engine.connect()
    finally:
        engine.dispose()

    problem = diagnose(caught.value)
    assert problem.kind == NOT_RUNNING
    assert "\n" not in problem.detail
    # libpq says what each server answered (connecting asynchronously, as
    # under eventlet, it leaves out the first one's name).
    assert problem.detail.lower().count("connection refused") == 2
    assert f'"127.0.0.1", port {second}' in problem.detail
    assert isinstance(service_error(caught.value, "probe"), ServiceUnavailable)


@pytest.mark.parametrize(
    "words",
    [
        'connection to server at "127.0.0.1", port 5433 failed: session is read-only',
        'connection to server at "b", port 5433 failed: server is in hot standby mode',
        'could not make a writable connection to server "b:5433"',
        # The primary down, the standby not promoted yet.
        'connection to server at "a", port 5432 failed: Connection refused\n\tIs the server '
        'running on that host and accepting TCP/IP connections?\nconnection to server at "b", '
        "port 5433 failed: session is read-only",
    ],
)
def test_standbys_alone_are_no_primary(words):
    assert diagnose(psycopg2.OperationalError(words)).kind == NO_PRIMARY
