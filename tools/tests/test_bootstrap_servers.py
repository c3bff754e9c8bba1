"""The bootstrap (and ``make test``'s prerequisites) on a database URL that
names several servers: the first that answers as a primary is used, the
project's role is never made on a guess, a failure still names the servers."""

import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from servicekit.config import ROOT, database_url, load_config
from servicekit.db import make_engine
from tests.support import free_port
from tools.bootstrap import check_postgres, names_one_server, reach_postgres

DEVELOPMENT = {"APP_ENV": "development"}


def several(*ports, username=None, password=None, database="postgres", last=True):
    """127.0.0.1 on ``ports`` (nothing listens there), then the configured
    server (unless ``last`` is false), in the ``host=a:port,b:port`` form,
    asking for the primary."""
    url = make_url(database_url(load_config(), "users"))
    hosts = [f"127.0.0.1:{port}" for port in ports]
    hosts += [f"{url.host}:{url.port or 5432}"] if last else []
    return (
        f"postgresql://{username or url.username}:{password or url.password}@/{database}"
        f"?host={','.join(hosts)}&target_session_attrs=read-write"
    )


def test_the_first_server_that_answers_is_used():
    url = several(free_port())
    check_postgres(url)
    reach_postgres(url, DEVELOPMENT, "make run", timeout=5)


def test_libpqs_own_form_is_read_too():
    server = make_url(database_url(load_config(), "users"))
    url = (
        f"postgresql://{server.username}:{server.password}@127.0.0.1:{free_port()},"
        f"{server.host}:{server.port or 5432}/postgres?target_session_attrs=read-write"
    )
    check_postgres(url)


def test_every_server_down_stops_with_one_line_naming_them():
    second = free_port()
    url = several(free_port(), second, last=False)

    with pytest.raises(SystemExit) as stopped:
        reach_postgres(url, DEVELOPMENT, "make run", timeout=0)

    said = str(stopped.value)
    assert said.startswith("make run: PostgreSQL is not running at ")
    assert "\n" not in said
    assert f"port {second} failed: Connection refused" in said


def test_no_role_is_made_for_a_url_of_several_servers():
    role = f"nobody_{uuid.uuid4().hex[:8]}"
    url = several(free_port(), username=role, password="a password")
    assert not names_one_server(url)

    with pytest.raises(SystemExit) as stopped:
        reach_postgres(url, DEVELOPMENT, "make run", timeout=5)

    assert "refused the login" in str(stopped.value)
    assert not role_exists(role)


def test_make_tests_prerequisites_accept_several_servers():
    env = {**os.environ, "USERS_DB_URL": several(free_port(), database="users")}
    done = subprocess.run(
        [sys.executable, "-m", "tests.prerequisites"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _server():
    return make_engine(
        make_url(database_url(load_config(), "users")).set(database="postgres"),
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
    )


def role_exists(role):
    engine = _server()
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
            return found.first() is not None
    finally:
        engine.dispose()
