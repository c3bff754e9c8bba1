"""Full-text search of events: a ``search_vector`` per row (title weighted A,
description B, body C), kept by a trigger, in a GIN index; the language of
its word forms in ``search_settings`` (English here, then the service's
SEARCH_LANGUAGE, see news.search)."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"


def upgrade():
    op.create_table(
        "search_settings",
        sa.Column("language", postgresql.REGCONFIG(), nullable=False),
        sa.Column("only_row", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.PrimaryKeyConstraint("only_row"),
        sa.CheckConstraint("only_row", name="search_settings_one_row"),
    )
    op.execute("INSERT INTO search_settings (language) VALUES ('english')")
    op.execute("""
        CREATE FUNCTION events_search_vector(title text, description text, body text)
        RETURNS tsvector LANGUAGE sql STABLE AS $$
          SELECT setweight(to_tsvector(s.language, coalesce(title, '')), 'A')
              || setweight(to_tsvector(s.language, coalesce(description, '')), 'B')
              || setweight(to_tsvector(s.language, coalesce(body, '')), 'C')
          FROM (SELECT coalesce((SELECT language FROM search_settings), 'english') AS language) s
        $$
    """)
    op.execute("""
        CREATE FUNCTION events_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          NEW.search_vector := events_search_vector(NEW.title, NEW.description, NEW.body);
          RETURN NEW;
        END $$
    """)
    op.add_column("events", sa.Column("search_vector", postgresql.TSVECTOR(), nullable=True))
    op.execute("UPDATE events SET search_vector = events_search_vector(title, description, body)")
    op.execute(
        "CREATE TRIGGER events_search_sync BEFORE INSERT OR UPDATE OF title, description, body "
        "ON events FOR EACH ROW EXECUTE FUNCTION events_search_sync()"
    )
    op.create_index("ix_events_search", "events", ["search_vector"], postgresql_using="gin")


def downgrade():
    op.drop_index("ix_events_search", table_name="events")
    op.execute("DROP TRIGGER events_search_sync ON events")
    op.drop_column("events", "search_vector")
    op.execute("DROP FUNCTION events_search_sync()")
    op.execute("DROP FUNCTION events_search_vector(text, text, text)")
    op.drop_table("search_settings")
