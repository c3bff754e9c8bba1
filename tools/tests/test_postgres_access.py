"""A stock PostgreSQL: its refusals told apart, and the project's role made
where the first command may make it (tools.postgres_access)."""

import os
import subprocess
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from servicekit.config import database_url, load_config
from servicekit.database_errors import DATABASE_MISSING, LOGIN_REFUSED, NOT_RUNNING, diagnose
from servicekit.db import make_engine
from tests.support import free_port
from tools.bootstrap import check_postgres, reach_postgres
from tools.postgres_access import advice, create_login, may_create_login

DEVELOPMENT = {"APP_ENV": "development"}


def project_url(**changes):
    return make_url(database_url(load_config(), "users")).set(**changes)


def failure_of(url):
    with pytest.raises(Exception) as caught:
        check_postgres(url.render_as_string(hide_password=False))
    return diagnose(caught.value)


def test_nothing_listening_is_not_running():
    problem = failure_of(project_url(host="127.0.0.1", port=free_port()))
    assert problem.kind == NOT_RUNNING


def test_an_unknown_role_is_a_refused_login():
    problem = failure_of(project_url(username=f"nobody_{uuid.uuid4().hex[:8]}"))
    assert problem.kind == LOGIN_REFUSED


def test_a_missing_database_is_told_apart():
    url = project_url(database=f"missing_{uuid.uuid4().hex[:8]}")
    with pytest.raises(Exception) as caught:
        engine = make_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            engine.dispose()
    assert diagnose(caught.value).kind == DATABASE_MISSING


# What libpq says on a stock Debian server, which a trust server (as on the
# machines that run this suite) never says.
@pytest.mark.parametrize(
    "said",
    [
        'connection to server at "localhost" (::1), port 5432 failed: fe_sendauth: '
        "no password supplied",
        'connection to server at "localhost" (127.0.0.1), port 5432 failed: FATAL:  '
        'password authentication failed for user "localnews"',
        'connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: '
        'FATAL:  Peer authentication failed for user "localnews"',
        'FATAL:  no pg_hba.conf entry for host "10.0.0.9", user "localnews", database '
        '"postgres", no encryption',
    ],
)
def test_stock_password_and_peer_refusals_are_refused_logins(said):
    assert diagnose(Exception(said)).kind == LOGIN_REFUSED


def test_the_advice_for_a_refused_login_is_one_line_with_the_command():
    problem = diagnose(Exception("FATAL: password authentication failed for user"))
    line = advice("postgresql://localnews:localnews@localhost:5432/users", problem, "make test")
    assert "\n" not in line
    assert line.startswith("make test: PostgreSQL at localhost:5432 runs but refused the login")
    assert "CREATE ROLE localnews LOGIN CREATEDB PASSWORD 'localnews'" in line


def test_the_role_is_made_only_for_development_on_this_machine_by_root():
    url = "postgresql://someone:secret@localhost:5432/users"
    assert may_create_login(url, {"APP_ENV": "production"}) is False
    assert may_create_login(url.replace("localhost", "db.example"), DEVELOPMENT) is False
    assert may_create_login("postgresql://someone@localhost/users", DEVELOPMENT) is False
    assert may_create_login(url, DEVELOPMENT) == (
        os.geteuid() == 0 and os.path.isdir("/var/run/postgresql")
    )


@pytest.fixture
def new_role():
    """A role name of this test's own; dropped at the end (as ``postgres``:
    the project's role may create databases, not drop roles)."""
    name = f"localnews_test_{uuid.uuid4().hex[:8]}"
    yield name
    if may_create_login(f"postgresql://{name}:x@localhost/postgres", DEVELOPMENT):
        subprocess.run(
            ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-d", "postgres",
             "-c", f'DROP ROLE IF EXISTS "{name}"'],
            check=True, cwd="/", capture_output=True,
        )  # fmt: skip


def rooted(url):
    if not may_create_login(url, DEVELOPMENT):
        pytest.skip("needs root, and the postgres account of a PostgreSQL on this machine")


def test_a_missing_role_is_made_through_the_postgres_account_once(new_role):
    url = project_url(username=new_role, password="a password").render_as_string(
        hide_password=False
    )
    rooted(url)
    assert create_login(url) is True
    assert create_login(url) is False  # it exists: left as it is
    engine = make_engine(project_url(database="postgres"), poolclass=NullPool)
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT rolcanlogin, rolcreatedb, rolsuper FROM pg_roles WHERE rolname = :name"),
            {"name": new_role},
        ).one()
    engine.dispose()
    assert tuple(row) == (True, True, False)


def test_reaching_postgres_makes_the_role_and_says_so(new_role, capsys):
    url = project_url(username=new_role, password="a password").render_as_string(
        hide_password=False
    )
    rooted(url)
    reach_postgres(url, DEVELOPMENT, "make test", timeout=5)
    check_postgres(url)  # the role now logs in
    assert f"make test: created the PostgreSQL role {new_role}" in capsys.readouterr().out


def test_reaching_postgres_that_is_not_running_stops_with_one_line():
    url = project_url(host="127.0.0.1", port=free_port()).render_as_string(hide_password=False)
    with pytest.raises(SystemExit) as stopped:
        reach_postgres(url, DEVELOPMENT, "make run", timeout=0)
    assert str(stopped.value).startswith("make run: PostgreSQL is not running at 127.0.0.1:")


def test_a_refused_login_in_production_names_the_command_instead():
    url = project_url(username=f"nobody_{uuid.uuid4().hex[:8]}", password="x")
    with pytest.raises(SystemExit) as stopped:
        reach_postgres(
            url.render_as_string(hide_password=False), {"APP_ENV": "production"}, "make run", 5
        )
    assert "refused the login" in str(stopped.value) and "CREATE ROLE" in str(stopped.value)
