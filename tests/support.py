"""What every service's tests use: pytest fixtures on the real broker and
databases, a running service with its proxy, and events read off the bus.

The fixtures replace two that break on current libraries: nameko's
``web_session`` (werkzeug 3 removed ``url_join``) and nameko-sqlalchemy's
``db_connection`` (SQLAlchemy 2's ``drop_all`` needs ``bind``).
"""

import contextlib
import os
import queue
import socket
import time
import uuid

import pytest
import requests
from kombu import Connection, Exchange, Queue
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from servicekit.config import database_key, database_url, load_config
from servicekit.db import make_engine
from tools import SERVICE_NAMES
from tools.migrations import create_database, drop_database, migrate


def eventually(check, timeout=5.0, interval=0.05):
    """Poll ``check`` until it returns a truthy value; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s: {check}")
        time.sleep(interval)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def test_database_urls():
    """A fresh database per service for this run, migrated with Alembic.

    Running the real migrations here is what tests them on PostgreSQL. The
    process id in the name keeps concurrent runs on one server apart.
    """
    config = load_config()
    urls = {}
    for service_name in SERVICE_NAMES:
        name = f"test_{service_name}_{os.getpid()}"
        url = make_url(database_url(config, service_name)).set(database=name)
        url = url.render_as_string(hide_password=False)
        drop_database(url)
        create_database(url)
        migrate(service_name, url)
        urls[service_name] = url
    yield urls
    for url in urls.values():
        drop_database(url)


@pytest.fixture(scope="session")
def _database_engines(test_database_urls):
    engines = {
        name: make_engine(url, poolclass=NullPool) for name, url in test_database_urls.items()
    }
    yield engines
    for engine in engines.values():
        engine.dispose()


@pytest.fixture
def clean_databases(_database_engines):
    """Empty every table (schema kept) before the test."""
    for engine in _database_engines.values():
        with engine.begin() as conn:
            tables = conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            ).scalars()
            names = ", ".join(f'"{name}"' for name in tables)
            if names:
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def db_session(_database_engines, clean_databases):
    """``db_session("users")``: a session on that service's test database."""
    sessions = []

    def open_session(service_name):
        session = Session(_database_engines[service_name])
        sessions.append(session)
        return session

    yield open_session
    for session in sessions:
        session.close()


@pytest.fixture
def config(rabbit_config, test_database_urls, clean_databases):
    """The project's config.yml, on a private vhost and the test databases."""
    cfg = load_config()
    cfg.update(rabbit_config)
    cfg["DB_URIS"] = {database_key(name): url for name, url in test_database_urls.items()}
    cfg["WEB_SERVER_ADDRESS"] = f"127.0.0.1:{free_port()}"
    return cfg


@pytest.fixture
def gateway_url(config):
    return "http://" + config["WEB_SERVER_ADDRESS"]


@pytest.fixture
def web_session(gateway_url):
    """``web_session.get("/health")``: requests against the gateway under test."""

    class GatewaySession(requests.Session):
        def request(self, method, url, *args, **kwargs):
            return super().request(method, gateway_url + url, *args, **kwargs)

    with GatewaySession() as session:
        yield session


@pytest.fixture
def container_factory(rabbit_config):
    """nameko's fixture, but stopping containers gracefully.

    The original kills them, which abandons workers between their reply and
    their teardown: their database sessions stay "idle in transaction" and
    hold locks that block the next test's clean-up. Depending on
    ``rabbit_config`` keeps the test vhost alive until the containers stopped.
    """
    from nameko.containers import get_container_cls

    containers = []

    def make_container(service_cls, config):
        container = get_container_cls(config)(service_cls, config)
        containers.append(container)
        return container

    yield make_container
    for container in containers:
        container.stop()


@pytest.fixture
def runner_factory(rabbit_config):
    """nameko's fixture, stopping runners gracefully (see container_factory)."""
    from nameko.runners import ServiceRunner

    runners = []

    def make_runner(config, *service_classes):
        runner = ServiceRunner(config)
        for service_cls in service_classes:
            runner.add_service(service_cls)
        runners.append(runner)
        return runner

    yield make_runner
    for runner in runners:
        runner.stop()


@pytest.fixture(autouse=True)
def fast_teardown():
    """Replaces nameko's, which tells every consumer to stop before the
    containers are stopped: fine for ``kill()``, a hang for a graceful stop."""
    yield


# Helpers for tests of a service on the real broker.


@contextlib.contextmanager
def running_service(container_factory, config, service_cls):
    """``service_cls`` started in a container; yields an RPC proxy to it."""
    container_factory(service_cls, config).start()
    with ServiceRpcProxy(service_cls.name, config) as proxy:
        yield proxy


class EventTap:
    def __init__(self, simple_queue):
        self._queue = simple_queue

    def take(self, count, timeout=5.0):
        """The next ``count`` events as ``(event_type, payload)``, in order."""
        events = []
        for _ in range(count):
            try:
                message = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"{len(events)} of {count} events after {timeout} s") from None
            message.ack()
            events.append((message.delivery_info["routing_key"], message.payload))
        return events

    def assert_quiet(self, timeout=0.5):
        """Nothing more arrives within ``timeout``."""
        with contextlib.suppress(queue.Empty):
            message = self._queue.get(timeout=timeout)
            raise AssertionError(f"unexpected event {message.delivery_info['routing_key']}")


@contextlib.contextmanager
def event_tap(config, service_name):
    """A private queue bound to ``<service_name>.events`` (every event type)
    for the block: ``tap.take(3)`` reads what was published meanwhile."""
    # Declared as nameko declares it, so whichever side comes first agrees.
    exchange = Exchange(f"{service_name}.events", type="topic", durable=True, auto_delete=False)
    tap_queue = Queue(
        f"test-tap-{service_name}-{uuid.uuid4().hex}",
        exchange=exchange,
        routing_key="#",
        exclusive=True,
        auto_delete=True,
    )
    with Connection(config["AMQP_URI"]) as conn, conn.SimpleQueue(tap_queue) as simple_queue:
        yield EventTap(simple_queue)


def crud_events(proxy, config, resource, new_item, change):
    """Create, update (with ``change``) and delete one item of a
    news.items service; check that each was published, in order, as
    ``<resource>_added``/``_updated``/``_deleted`` with the contract's
    payload whose ``data`` is what the RPC returned. Returns the payloads."""
    with event_tap(config, proxy.service_name) as tap:
        created = proxy.create(new_item)
        returned = [created, proxy.update(created["id"], change), proxy.delete(created["id"])]
        published = tap.take(3)
        tap.assert_quiet()

    kinds = [f"{resource}_{step}" for step in ("added", "updated", "deleted")]
    assert [(kind, payload["data"]) for kind, payload in published] == list(
        zip(kinds, returned, strict=True)
    )
    for _, payload in published:
        assert set(payload) == {"eventId", "occurredAt", "data"}
        uuid.UUID(payload["eventId"])
        assert payload["occurredAt"].endswith("Z")
    return [payload for _, payload in published]
