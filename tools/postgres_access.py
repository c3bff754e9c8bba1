"""Reaching PostgreSQL as installed by a distribution, and saying why not.

A stock Debian or Ubuntu PostgreSQL asks for a password on TCP
(``scram-sha-256``) and lets an operating-system user in through the Unix
socket only as the role of the same name (``peer``). The development
default, ``postgresql://localnews:localnews@localhost:5432/<service>``, is
a role with a password over TCP: it works there, on a ``trust`` server, and
in the compose file's PostgreSQL, which makes the same role. Only the role
itself is missing on a fresh install. Run as root on the database's own
machine, ``make run`` and ``make test`` create it once, through the
``postgres`` account and the socket (:func:`create_login`); anywhere else they
say, in one line, the command that does (:func:`advice`).

psycopg2 reports every failure to connect as one ``OperationalError``, while
each needs its own fix: ``servicekit.database_errors.diagnose`` tells them
apart.
"""

import os
import pwd
import shutil
import subprocess
from glob import glob

from sqlalchemy.engine import make_url

from servicekit.config import server_names
from servicekit.database_errors import DATABASE_MISSING, LOGIN_REFUSED, NOT_RUNNING, STARTING

from . import LOCAL_HOSTS


def where(url):
    return server_names(url)  # every server a multi-host URL names


def _role_sql(url):
    """The statement that makes ``url``'s role, as an operator types it."""
    url = make_url(url)
    password = (url.password or "").replace("'", "''")
    return f"CREATE ROLE {_identifier(url.username)} LOGIN CREATEDB PASSWORD '{password}'"


def _identifier(name):
    plain = name.isidentifier() and name.islower() and name.isascii()
    return name if plain else '"' + name.replace('"', '""') + '"'


def advice(url, problem, who):
    """One line: what is wrong with PostgreSQL and the command that fixes it.

    ``who`` names the command speaking (``make test``, say).
    """
    at, role = where(url), make_url(url).username
    if problem.kind == NOT_RUNNING:
        return f"{who}: PostgreSQL is not running at {at} ({problem.detail}); start it first."
    if problem.kind == STARTING:
        return f"{who}: PostgreSQL at {at} is still starting or stopping ({problem.detail})."
    if problem.kind == DATABASE_MISSING:
        return (
            f"{who}: PostgreSQL at {at} runs, but a database is missing ({problem.detail}); "
            f"`make migrate` creates the project's databases if role {role} may (CREATEDB)."
        )
    if problem.kind == LOGIN_REFUSED:
        as_postgres = "sudo -u postgres psql" if _postgres_account() else "psql -d postgres"
        return (
            f"{who}: PostgreSQL at {at} runs but refused the login of role {role} "
            f"({problem.detail}); create the role once with: "
            f'{as_postgres} -c "{_role_sql(url)}" '
            "(make run and make test do it themselves when run as root on that machine)."
        )
    return f"{who}: cannot use PostgreSQL at {at}: {problem.detail}"


def _postgres_account():
    try:
        pwd.getpwnam("postgres")
        return True
    except KeyError:
        return False


def _psql():
    """psql of the distribution: on PATH, or where Debian keeps each version."""
    found = shutil.which("psql")
    if found:
        return found
    versions = sorted(glob("/usr/lib/postgresql/*/bin/psql"))
    return versions[-1] if versions else None


def may_create_login(url, config):
    """Whether :func:`create_login` may run for ``url``: development
    settings, a role with a password on this machine, run by root, and the
    ``postgres`` account and psql there."""
    url = make_url(url)
    return (
        config.get("APP_ENV") != "production"
        and (url.host or "localhost") in LOCAL_HOSTS
        and bool(url.username)
        and bool(url.password)
        and url.username != "postgres"
        and os.geteuid() == 0
        and _postgres_account()
        and _psql() is not None
    )


# Creates the role unless it exists (a role that exists keeps its password).
_CREATE_ROLE = """\
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \\gexec
"""


def create_login(url):
    """Create ``url``'s role (LOGIN, CREATEDB, its password) as the
    ``postgres`` account over the Unix socket, which stock peer
    authentication lets in. ``True`` if made now, ``False`` if it existed;
    raises ``RuntimeError`` with psql's words if it could not."""
    url = make_url(url)
    command = [
        "runuser", "-u", "postgres", "--",
        _psql(), "-X", "-t", "-v", "ON_ERROR_STOP=1",
        "-v", f"role={url.username}", "-v", f"password={url.password}",
        "-p", str(url.port or 5432), "-d", "postgres", "-f", "-",
    ]  # fmt: skip
    done = subprocess.run(
        command, input=_CREATE_ROLE, capture_output=True, text=True, check=False, cwd="/"
    )
    if done.returncode != 0:
        raise RuntimeError(" ".join((done.stderr or done.stdout).split()) or "psql failed")
    return "CREATE ROLE" in done.stdout or "CREATE ROLE" in done.stderr
