"""The ``events`` table (``attending`` is its ``meta`` counter; ``event_date`` is
indexed for ``from``/``to``), the ``event_tags`` tag index and the trigger
function and trigger that keep it in step with ``tags``."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade():
    op.create_table(
        "events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("author_uid", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("tags", sa.ARRAY(sa.String()), nullable=False),
        sa.Column("images_uid", sa.ARRAY(sa.String()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attending", sa.Integer(), nullable=False),
        sa.Column("event_date", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_events_created_at_id", "events", ["created_at", "id"])
    op.create_table(
        "event_tags",
        sa.Column("tag", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["id"], ["events.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tag", "created_at", "id"),
    )
    # The function body is stored as written: keep its text unchanged.
    op.execute("""
        CREATE FUNCTION event_tags_sync() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'UPDATE' THEN
            IF NEW.tags IS NOT DISTINCT FROM OLD.tags
               AND NEW.created_at = OLD.created_at THEN
              RETURN NULL;
            END IF;
            DELETE FROM event_tags WHERE id = OLD.id;
          END IF;
          INSERT INTO event_tags (tag, created_at, id)
          SELECT DISTINCT t, NEW.created_at, NEW.id FROM unnest(NEW.tags) AS t
          WHERE t IS NOT NULL;
          RETURN NULL;
        END $$
    """)
    op.execute(
        "CREATE TRIGGER event_tags_sync AFTER INSERT OR UPDATE OF tags, created_at "
        "ON events FOR EACH ROW EXECUTE FUNCTION event_tags_sync()"
    )
    op.create_index("ix_events_event_date", "events", ["event_date"])


def downgrade():
    op.execute("DROP TRIGGER event_tags_sync ON events")
    op.drop_table("event_tags")
    op.drop_index("ix_events_event_date", table_name="events")
    op.drop_index("ix_events_created_at_id", table_name="events")
    op.drop_table("events")
    op.execute("DROP FUNCTION event_tags_sync()")
