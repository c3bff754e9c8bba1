"""Alembic, once per service database, as a step before the services start.

Every service's ``migrations/env.py`` is two lines that call :func:`run_env`.
The database URL comes from ``config.yml`` (so from the same environment
variables as the service), never from autogenerate at run time.
"""

import logging

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from .config import ROOT, SERVICE_NAMES, database_url, load_config
from .db import make_engine

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


def create_database(url):
    """Create the database named by ``url`` if it does not exist."""
    url = make_url(url)
    admin = make_engine(
        url.set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            ).scalar()
            if not exists:
                # Identifiers cannot be bound parameters; quote it ourselves.
                name = url.database.replace('"', '""')
                conn.execute(text(f'CREATE DATABASE "{name}"'))
                log.info("created database %s", url.database)
    finally:
        admin.dispose()


def migrate(service_name, url=None):
    """Create the service's database if missing and upgrade it to head."""
    url = url or database_url(load_config(), service_name)
    create_database(url)
    command.upgrade(alembic_config(service_name, url), "head")


def migrate_all(config=None):
    config = config or load_config()
    for service_name in SERVICE_NAMES:
        migrate(service_name, database_url(config, service_name))


# Tables of the shared mechanisms, created by each service's own migration.


def create_outbox_table():
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("aggregate_id", sa.String(length=64), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["aggregate_id", "id"],
        postgresql_where=sa.text("published_at IS NULL"),
    )


def create_processed_events_table():
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("handler", sa.String(length=100), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "handler"),
    )
