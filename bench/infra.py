"""What the bench needs around the services: wrk, free ports, a scratch
RabbitMQ vhost and scratch databases. Anything missing is a ``CannotRun``
whose message says what to do."""

import os
import shutil
import socket
import subprocess
import sys
from contextlib import contextmanager, suppress
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from sqlalchemy.engine import make_url

from servicekit.config import ROOT, database_url
from tools import SERVICE_NAMES
from tools.migrations import drop_database

RABBITMQ_API = os.environ.get("RABBITMQ_API", "http://guest:guest@localhost:15672/api")


class CannotRun(Exception):
    """The stack cannot be run; the message is the one line to show."""


def find_wrk():
    """The path of ``wrk``, installed with apt-get when we are root and it is missing."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench: wrk is missing; installing it with apt-get", file=sys.stderr, flush=True)
        install = ["apt-get", "install", "-y", "-q", "wrk"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
        if subprocess.run(install, **quiet).returncode != 0:
            # A fresh image has no package lists yet.
            subprocess.run(["apt-get", "update", "-q"], **quiet)
            subprocess.run(install, **quiet)
        path = shutil.which("wrk")
        if path:
            return path
    raise CannotRun("wrk is not installed: install it (Debian/Ubuntu: sudo apt-get install wrk)")


def refuse_busy_ports(*ports):
    """A stale gateway on our port would silently take part of the traffic."""
    for port in ports:
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            raise CannotRun(
                f"port {port} already accepts connections (a stale gateway?): stop that "
                f"process, or choose other ports with BENCH_ARGS='--port N --cold-port M --feed-port F'"
            )


@contextmanager
def scratch_vhost(amqp_uri, name):
    """A vhost of our own for the block; yields the AMQP URI pointing at it."""
    delete = _create_vhost(name, urlsplit(amqp_uri).username or "guest")
    try:
        scheme, netloc, _, query, fragment = urlsplit(amqp_uri)
        yield urlunsplit((scheme, netloc, "/" + quote(name, safe=""), query, fragment))
    finally:
        try:
            delete()
        except (CannotRun, requests.RequestException) as exc:
            print(f"bench: could not delete the vhost {name}: {exc}", file=sys.stderr)


def _create_vhost(name, user):
    """Through the management API when it answers, else with rabbitmqctl;
    returns the function that deletes the vhost again."""
    api = RABBITMQ_API.rstrip("/")
    vhost_url = f"{api}/vhosts/{quote(name, safe='')}"
    try:
        requests.put(vhost_url, timeout=10).raise_for_status()
    except requests.RequestException:
        _rabbitmqctl("add_vhost", name)
        _rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
        return lambda: _rabbitmqctl("delete_vhost", name)
    permissions_url = f"{api}/permissions/{quote(name, safe='')}/{quote(user, safe='')}"
    grant = {"configure": ".*", "write": ".*", "read": ".*"}
    try:
        requests.put(permissions_url, json=grant, timeout=10).raise_for_status()
    except requests.RequestException as exc:
        requests.delete(vhost_url, timeout=30)
        raise CannotRun(f"cannot give {user} access to the vhost {name}: {exc}") from None
    return lambda: requests.delete(vhost_url, timeout=30).raise_for_status()


def _rabbitmqctl(*args):
    try:
        subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CannotRun(
            f"cannot make a RabbitMQ vhost: the management API ({without_password(RABBITMQ_API)}) does not "
            f"answer and `rabbitmqctl {args[0]}` failed ({exc}); enable the management plugin "
            f"(rabbitmq-plugins enable rabbitmq_management) or run as a user allowed to use "
            f"rabbitmqctl"
        ) from None


def without_password(url):
    """``url`` as it may be shown."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(
        parts._replace(netloc=f"{parts.username}@{netloc}" if parts.username else netloc)
    )


def scratch_database_urls(config):
    """``bench_<service>`` on the server of each service's configured database."""
    return {
        name: make_url(database_url(config, name))
        .set(database=f"bench_{name}")
        .render_as_string(hide_password=False)
        for name in SERVICE_NAMES
    }


def drop_databases(urls):
    for url in urls.values():
        drop_database(url)


def bootstrap(env):
    """``python -m tools.bootstrap`` with the bench's environment: the
    databases are created and migrated, the event queues declared."""
    result = subprocess.run(
        [sys.executable, "-m", "tools.bootstrap"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["(no output)"]
        raise CannotRun(f"bootstrap of the bench databases failed: {lines[-1]}")
