"""``python -m servicekit.bootstrap``: wait for the broker and PostgreSQL,
create the service databases if missing, apply every migration, declare the
durable event queues.

Run once per deployment (``make migrate``, ``make run``, the ``migrate``
container), not by each replica.
"""

import logging
import sys
import time

from kombu import Connection
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from .config import SERVICE_NAMES, check_config, database_url, load_config
from .db import make_engine
from .migrations import migrate
from .topology import declare_event_queues, service_classes

log = logging.getLogger("bootstrap")


def wait_for(name, check, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            check()
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} is not reachable after {timeout:.0f} s: {exc}") from None
            time.sleep(0.5)


def check_broker(amqp_uri):
    with Connection(amqp_uri, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1)


def check_postgres(url):
    engine = make_engine(
        make_url(url).set(database="postgres"),
        poolclass=NullPool,
        connect_args={"connect_timeout": 2},
    )
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def main(timeout=30.0):
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = load_config()
    check_config(config)
    wait_for("RabbitMQ", lambda: check_broker(config["AMQP_URI"]), timeout)
    for service_name in SERVICE_NAMES:
        url = database_url(config, service_name)
        wait_for(f"PostgreSQL for {service_name}", lambda url=url: check_postgres(url), timeout)
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
