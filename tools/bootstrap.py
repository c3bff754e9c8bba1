"""``python -m tools.bootstrap``: wait for the broker and PostgreSQL,
create the service databases if missing, apply every migration, declare the
durable event queues.

Run once per deployment (``make migrate``, ``make run``, the ``migrate``
container), not by each replica.
"""

import logging
import sys
import time

from amqp.exceptions import AccessRefused, NotAllowed
from kombu import Connection
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from servicekit.config import check_config, database_servers, database_url, libpq_url, load_config
from servicekit.database_errors import LOGIN_REFUSED, NO_PRIMARY, NOT_RUNNING, STARTING, diagnose
from servicekit.db import make_engine

from . import SERVICE_NAMES
from .migrations import migrate
from .postgres_access import advice, create_login, may_create_login, where
from .topology import declare_event_queues, service_classes

log = logging.getLogger("bootstrap")


def check_broker(amqp_uri):
    with Connection(amqp_uri, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1)


def reach_broker(amqp_uri, who, timeout):
    """Return once RabbitMQ lets ``amqp_uri`` in; wait while it is not
    running yet (up to ``timeout``); a refused login or a missing vhost
    stops at once with one line saying which."""
    deadline = time.monotonic() + timeout
    at = Connection(amqp_uri).as_uri()  # without the password
    while True:
        try:
            check_broker(amqp_uri)
            return
        except AccessRefused as exc:
            raise SystemExit(
                f"{who}: RabbitMQ at {at} runs but refused the login ({exc}); check the "
                "user and password of AMQP_URI (`guest` may only log in from the same machine)."
            ) from None
        except NotAllowed as exc:
            vhost = Connection(amqp_uri).virtual_host
            raise SystemExit(
                f"{who}: RabbitMQ at {at} runs but refused the vhost ({exc}); create it with "
                f"`sudo rabbitmqctl add_vhost {vhost}` and give the user its permissions."
            ) from None
        except Exception as exc:
            if time.monotonic() >= deadline:
                raise SystemExit(
                    f"{who}: RabbitMQ is not running at {at} ({exc}); start it first."
                ) from None
            time.sleep(0.5)


def check_postgres(url):
    engine = make_engine(
        make_url(libpq_url(url)).set(database="postgres"),
        poolclass=NullPool,
        connect_args={"connect_timeout": 2},
    )
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def names_one_server(url):
    """``url`` names one server, before its path (or none: the local
    socket), where :mod:`tools.postgres_access` reads it; not several, of
    which a promoted standby may be the primary."""
    url = libpq_url(url)
    parsed = make_url(url)
    return database_servers(url) == [(parsed.host, parsed.port)]


def reach_postgres(url, config, who, timeout):
    """Return once PostgreSQL lets ``url``'s role in; wait while it is not
    running yet, or while a URL that names several servers finds no primary
    among them (a standby being promoted), up to ``timeout``; create the
    role where we may (see :mod:`tools.postgres_access`; a URL of one
    server only); else stop with one line saying what is wrong and the
    command that fixes it."""
    deadline = time.monotonic() + timeout
    tried_creating = False
    while True:
        try:
            check_postgres(url)
            return
        except Exception as exc:
            problem = diagnose(exc)
        if (
            problem.kind == LOGIN_REFUSED
            and not tried_creating
            and names_one_server(url)
            and may_create_login(url, config)
        ):
            tried_creating = True
            try:
                if create_login(url):
                    role = make_url(url).username
                    print(
                        f"{who}: created the PostgreSQL role {role} at {where(url)} "
                        "through the postgres account (a stock install asks for a password)",
                        flush=True,
                    )
            except (RuntimeError, OSError) as exc:
                raise SystemExit(
                    f"{advice(url, problem, who)} [creating it failed: {exc}]"
                ) from None
            continue
        if problem.kind in (NOT_RUNNING, STARTING, NO_PRIMARY) and time.monotonic() < deadline:
            time.sleep(0.5)
            continue
        raise SystemExit(advice(url, problem, who))


def main(timeout=30.0, who="bootstrap"):
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # One line a database below says it is migrated; Alembic's own lines
    # (each revision's description) are for `alembic -n <service> history`.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    config = load_config()
    check_config(config)
    reach_broker(config["AMQP_URI"], who, timeout)
    for service_name in SERVICE_NAMES:
        url = database_url(config, service_name)
        reach_postgres(url, config, who, timeout)
        migrate(service_name, url)
        log.info("%s: database migrated", service_name)
    classes = [cls for name in SERVICE_NAMES for cls in service_classes(f"{name}.service")]
    declare_event_queues(config, classes)
    log.info("event queues declared")


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # a clear line, not a traceback, for operators
        sys.exit(f"bootstrap failed: {type(exc).__name__}: {exc}")
