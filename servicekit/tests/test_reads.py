"""Reads without the ORM's machinery: a statement prepared once per
connection, and rows dumped by a plan read from the schema once."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import psycopg2
import pytest
from marshmallow import fields
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP, UUID
from sqlalchemy.pool import NullPool

from servicekit.db import PreparedRead, make_engine
from servicekit.schemas import UTCDateTime, WireSchema, row_dumper, string_list

metadata = MetaData()
things = Table(
    "prepared_things",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("name", String),
    Column("count", Integer),
    Column("tags", ARRAY(String)),
    Column("made_at", TIMESTAMP(timezone=True)),
)
THING_BY_ID = select(things).where(things.c.id == bindparam("id"))


class ThingSchema(WireSchema):
    id = fields.UUID(dump_only=True)
    displayName = fields.String(attribute="name")
    count = fields.Integer()
    tags = string_list()
    madeDate = UTCDateTime(attribute="made_at", dump_only=True)
    secret = fields.String(load_only=True)


@pytest.fixture
def reads(kit_database_url):
    """An autocommit engine, as a service's reads, on a table of things."""
    engine = make_engine(
        kit_database_url, isolation_level="AUTOCOMMIT", pool_reset_on_return=None, pool_size=1
    )
    metadata.create_all(engine)
    yield engine
    metadata.drop_all(engine)
    engine.dispose()


def prepared_here(conn, name):
    query = text("SELECT count(*) FROM pg_prepared_statements WHERE name = :name")
    return conn.execute(query, {"name": name}).scalar()


def test_a_prepared_read_gives_mappings_and_prepares_once_per_connection(reads):
    first, second = uuid.uuid4(), uuid.uuid4()
    made = datetime(2026, 12, 6, 8, 0, 0, 123456, tzinfo=UTC)
    with reads.connect() as conn:
        conn.execute(things.insert(), [{"id": first, "name": "one", "count": 1, "made_at": made}])
        conn.execute(things.insert(), [{"id": second, "name": "two", "tags": ["a", "b"]}])
        read = PreparedRead("thing_by_id", THING_BY_ID)
        row = read.first(conn, id=first)
        assert row == {
            "id": first,
            "name": "one",
            "count": 1,
            "tags": None,
            "made_at": made,
        }
        assert read.first(conn, id=str(second))["tags"] == ["a", "b"]  # an id as text too
        assert read.first(conn, id=uuid.uuid4()) is None
        assert prepared_here(conn, "thing_by_id") == 1


def test_a_new_connection_prepares_the_read_again(reads):
    read = PreparedRead("thing_by_id_again", THING_BY_ID)
    thing = uuid.uuid4()
    with reads.connect() as conn:
        conn.execute(things.insert(), [{"id": thing, "name": "kept"}])
        assert read.first(conn, id=thing)["name"] == "kept"
    reads.dispose()  # the pool's connection closed: the next one is a new backend
    with reads.connect() as conn:
        assert prepared_here(conn, "thing_by_id_again") == 0
        assert read.first(conn, id=thing)["name"] == "kept"
        assert prepared_here(conn, "thing_by_id_again") == 1


@pytest.mark.parametrize(
    "row",
    [
        {
            "id": uuid.uuid4(),
            "name": "Ünïcode ✓",
            "count": 3,
            "tags": ["x", "y"],
            "made_at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2))),
            "secret": "never dumped",
        },
        {"id": str(uuid.uuid4()), "name": None, "count": None, "tags": None, "made_at": None},
        {"id": uuid.uuid4(), "name": "", "count": 0, "tags": [], "made_at": datetime.now(UTC)},
    ],
)
def test_a_row_dumps_as_the_schema_dumps_it(row):
    schema = ThingSchema()
    dump = row_dumper(schema)
    assert dump is not schema.dump  # planned, not marshmallow's
    assert dump(row) == schema.dump(row)
    assert list(dump(row)) == list(schema.dump(row))  # the same keys in the same order


def test_a_schema_with_fields_not_planned_is_dumped_by_marshmallow():
    class Nested(WireSchema):
        thing = fields.Nested(ThingSchema)

    schema = Nested()
    assert row_dumper(schema) == schema.dump


def test_a_connection_found_dead_by_a_prepared_read_leaves_the_pool(reads, kit_database_url):
    read = PreparedRead("thing_by_id_dead", THING_BY_ID)
    thing = uuid.uuid4()
    with reads.connect() as conn:
        conn.execute(things.insert(), [{"id": thing, "name": "alive"}])
        first = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        assert read.first(conn, id=thing)["name"] == "alive"
    killer = make_engine(kit_database_url, poolclass=NullPool)
    with killer.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    killer.dispose()
    with reads.connect() as conn, pytest.raises(psycopg2.OperationalError):
        read.first(conn, id=thing)  # the pool's one connection, dead: a 503 for its caller
    with reads.connect() as conn:  # not handed out again: a new backend
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != first
        assert read.first(conn, id=thing)["name"] == "alive"
