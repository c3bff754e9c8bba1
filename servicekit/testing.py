"""Pytest fixtures shared by every service's tests (real broker and database).

Replacements for two fixtures that break on current libraries: nameko's
``web_session`` (werkzeug 3 removed ``url_join``) and nameko-sqlalchemy's
``db_connection`` (SQLAlchemy 2's ``drop_all`` needs ``bind``).
"""

import os
import socket

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from .config import SERVICE_NAMES, database_url, load_config
from .db import make_engine
from .migrations import create_database, drop_database, migrate


def _free_port():
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
    cfg["DB_URIS"] = {f"{name}:Base": url for name, url in test_database_urls.items()}
    cfg["WEB_SERVER_ADDRESS"] = f"127.0.0.1:{_free_port()}"
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
