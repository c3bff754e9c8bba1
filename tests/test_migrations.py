"""Every service's migrations build the schema its models describe.

The test databases of ``test_database_urls`` are migrated to head; Alembic's
autogenerate compares each with its service's ``Base.metadata``. What it
cannot see is handled here, one kind at a time:

- ``alembic_version`` is Alembic's own table, in no model (see ``include_object``);
- a partial index's ``WHERE`` is not compared by autogenerate (a changed
  predicate passes unnoticed): :func:`predicate_differences` compares it;
- the tag tables' trigger functions and triggers (articles, events) exist in
  the migrations only, no model declares them: the ``?tag=`` tests of those
  services check what they do.

Expression indexes (``lower(email)``) need nothing: autogenerate reflects and
compares them.
"""

import importlib

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.pool import NullPool

from servicekit.db import make_engine
from tools import SERVICE_NAMES


def metadata_of(service_name):
    # By module path: a model class may move, the ``Base`` name stays.
    return importlib.import_module(f"{service_name}.models").Base.metadata


def include_object(obj, name, type_, reflected, compare_to):
    return not (type_ == "table" and name == "alembic_version")


PREDICATE = sa.text(
    "SELECT pg_get_expr(indpred, indrelid) FROM pg_index WHERE indexrelid = to_regclass(:name)"
)


def model_predicate(connection, table, index):
    """The index's ``WHERE`` as PostgreSQL prints it (``(deleted_at IS NULL)``):
    put on a scratch index of ``table``, read back, rolled back."""
    where = index.dialect_options["postgresql"]["where"]
    if where is None:
        return None
    quote = connection.dialect.identifier_preparer.quote
    sql = where.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    column = quote(next(iter(table.columns)).name)
    scratch = connection.begin_nested()
    try:
        connection.execute(
            sa.text(f"CREATE INDEX scratch_predicate ON {quote(table.name)} ({column}) WHERE {sql}")
        )
        return connection.execute(PREDICATE, {"name": "scratch_predicate"}).scalar()
    finally:
        scratch.rollback()


def predicate_differences(connection, metadata):
    """Model indexes whose ``WHERE`` differs from the database's index of that
    name. A missing index is compare_metadata's to report."""
    quote = connection.dialect.identifier_preparer.quote
    differences = []
    for table in metadata.sorted_tables:
        for index in table.indexes:
            name = quote(index.name)
            if connection.execute(sa.text("SELECT to_regclass(:name)"), {"name": name}).scalar():
                in_database = connection.execute(PREDICATE, {"name": name}).scalar()
                in_model = model_predicate(connection, table, index)
                if in_database != in_model:
                    differences.append(
                        ("modify_index_where", table.name, index.name, in_database, in_model)
                    )
    return differences


def schema_differences(url, metadata):
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_object": include_object}
            )
            differences = compare_metadata(context, metadata)
            differences += predicate_differences(connection, metadata)
            connection.rollback()
    finally:
        engine.dispose()
    return differences


def listed(differences):
    return "\n".join(f"  {difference!r}" for difference in differences)


@pytest.mark.parametrize("service_name", SERVICE_NAMES)
def test_migrations_build_the_models_schema(test_database_urls, service_name):
    differences = schema_differences(test_database_urls[service_name], metadata_of(service_name))
    assert not differences, (
        f"{service_name}: the migrated database differs from {service_name}.models "
        f"(a migration is missing or wrong):\n{listed(differences)}"
    )


def copy_of(metadata):
    copy = sa.MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(copy)
    return copy


def add_column(metadata):
    metadata.tables["articles"].append_column(sa.Column("extra", sa.Integer(), nullable=True))
    return "add_column"


def change_predicate(metadata):
    index = next(i for i in metadata.tables["outbox"].indexes if i.name == "ix_outbox_unpublished")
    index.dialect_options["postgresql"]["where"] = sa.text("published_at IS NOT NULL")
    return "modify_index_where"


@pytest.mark.parametrize("change", [add_column, change_predicate])
def test_a_model_change_without_migration_is_reported(test_database_urls, change):
    metadata = copy_of(metadata_of("articles"))
    kind = change(metadata)
    differences = schema_differences(test_database_urls["articles"], metadata)
    assert [difference[0] for difference in differences] == [kind], listed(differences)
