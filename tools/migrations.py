"""Alembic, once per service database, as a step before the services start.

Every service's ``migrations/env.py`` is two lines that call :func:`run_env`.
The database URL comes from ``config.yml`` (so from the same environment
variables as the service), never from autogenerate at run time.
"""

import logging

from alembic import command, context
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from servicekit.config import ROOT, database_url, load_config
from servicekit.db import make_engine

log = logging.getLogger(__name__)


def run_env(metadata, service_name):
    """Body of a service's ``migrations/env.py`` (online mode only)."""
    url = context.config.attributes.get("url") or database_url(load_config(), service_name)
    engine = make_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def alembic_config(service_name, url=None):
    cfg = Config(str(ROOT / "alembic.ini"), ini_section=service_name)
    cfg.set_main_option("script_location", str(ROOT / service_name / "migrations"))
    if url:
        cfg.attributes["url"] = url
    return cfg


def _on_server(url, statement, **params):
    """Run ``statement`` on the server of ``url``, outside any transaction.

    CREATE/DROP DATABASE cannot run inside one, nor on the database itself.
    """
    engine = make_engine(
        make_url(url).set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as conn:
            result = conn.execute(text(statement), params)
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def _quoted(name):
    # Identifiers cannot be bound parameters; quote them ourselves.
    return '"' + name.replace('"', '""') + '"'


def create_database(url):
    """Create the database named by ``url`` if it does not exist."""
    name = make_url(url).database
    if not _on_server(url, "SELECT 1 FROM pg_database WHERE datname = :name", name=name):
        _on_server(url, f"CREATE DATABASE {_quoted(name)}")
        log.info("created database %s", name)


def drop_database(url):
    """Drop the database named by ``url`` (scratch databases of tests and benchmarks)."""
    _on_server(url, f"DROP DATABASE IF EXISTS {_quoted(make_url(url).database)} WITH (FORCE)")


def migrate(service_name, url=None):
    """Create the service's database if missing and upgrade it to head."""
    url = url or database_url(load_config(), service_name)
    create_database(url)
    command.upgrade(alembic_config(service_name, url), "head")
