"""A PostgreSQL server of the test's own: restarted, stopped, promoted at will.

The host's PostgreSQL is never touched (other people's tests use it).
:class:`PrivatePostgres` runs the distribution's server binaries as the
``postgres`` account (``initdb``, ``pg_ctl``) on a data directory in a temp
dir and a free port of its own, with ``trust`` authentication on loopback,
and makes the project's role (``localnews``). :meth:`PrivatePostgres.standby`
clones one with ``pg_basebackup -R``: a streaming standby on another port.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from glob import glob
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.pool import NullPool

from servicekit.db import make_engine
from tests.support import free_port

ROLE = PASSWORD = "localnews"
TIMEOUT_SECONDS = 60


def bindir():
    """Where the server binaries are: ``pg_config --bindir``'s answer is the
    client's; a Debian server keeps its own under /usr/lib/postgresql/<v>/bin."""
    found = sorted(glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def unavailable():
    """Why a private server cannot run here, or ``None`` if it can."""
    if bindir() is None:
        return "no PostgreSQL server binaries (pg_ctl, initdb)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres account to run the server as"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != "postgres":
        return "must run as root or postgres to start a server as postgres"
    return None


def as_postgres(*command, check=True):
    """Run a server binary as the ``postgres`` account; its output."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    done = subprocess.run(
        [*prefix, str(bindir() / command[0]), *command[1:]],
        capture_output=True,
        text=True,
        cwd="/",
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {done.stderr or done.stdout}")
    return done.stdout


class PrivatePostgres:
    """One server: ``start()``, ``restart()``, ``stop()``, ``promote()``,
    ``close()``; ``url(database)`` for the project's role on it."""

    def __init__(self, port=None, root=None):
        self.root = Path(root or tempfile.mkdtemp(prefix="localnews-pg-"))
        self.data = self.root / "data"
        self.port = port or free_port()
        self.log_path = self.root / "server.log"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)

    def init(self):
        as_postgres(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        return self

    def start(self):
        """Start it and wait until it takes connections; seconds it took."""
        started = time.monotonic()
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        as_postgres(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log_path), "-w", "start"
        )
        return time.monotonic() - started

    def stop(self, mode="fast"):
        """``fast``: every connection terminated ("terminating connection due
        to administrator command"), a clean shutdown. Seconds it took."""
        started = time.monotonic()
        as_postgres("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        return time.monotonic() - started

    def restart(self, mode="fast"):
        """``pg_ctl restart``: stopped as :meth:`stop` does, started with
        the same options. Seconds until it took connections again."""
        started = time.monotonic()
        as_postgres(
            "pg_ctl", "-D", str(self.data), "-m", mode, "-l", str(self.log_path), "-w", "restart"
        )
        return time.monotonic() - started

    def promote(self):
        """A standby becomes a primary that takes writes. Seconds it took."""
        started = time.monotonic()
        as_postgres("pg_ctl", "-D", str(self.data), "-w", "promote")
        return time.monotonic() - started

    def running(self):
        return self.data.exists() and "server is running" in as_postgres(
            "pg_ctl", "-D", str(self.data), "status", check=False
        )

    def standby(self, standby=None):
        """A streaming standby of this server (``pg_basebackup -R``) on a
        port of its own (``standby``'s: a :class:`PrivatePostgres` not
        initialised yet), started."""
        standby = standby or PrivatePostgres()
        as_postgres(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
            "-D", str(standby.data), "-R", "-X", "stream", "--no-sync", "--checkpoint=fast",
        )  # fmt: skip
        standby.start()
        return standby

    def url(self, database, host=None):
        return f"postgresql://{ROLE}:{PASSWORD}@{host or f'127.0.0.1:{self.port}'}/{database}"

    def create_login(self):
        """The project's role, as ``make migrate`` expects to find it."""
        engine = make_engine(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres",
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
        )
        try:
            with engine.connect() as conn:
                conn.execute(text(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}'"))
        finally:
            engine.dispose()

    def log(self):
        try:
            return self.log_path.read_text()
        except OSError:
            return ""

    def close(self):
        """Stop it (at once) if it runs, and remove its files."""
        try:
            if self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
