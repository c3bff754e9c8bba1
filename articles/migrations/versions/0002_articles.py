"""The ``articles`` table (``likes`` is its ``meta`` counter), the ``article_tags``
tag index and the trigger function and trigger that keep it in step with ``tags``."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade():
    op.create_table(
        "articles",
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
        sa.Column("likes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_articles_created_at_id", "articles", ["created_at", "id"])
    op.create_table(
        "article_tags",
        sa.Column("tag", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["id"], ["articles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tag", "created_at", "id"),
    )
    # The function body is stored as written: keep its text unchanged.
    op.execute("""
        CREATE FUNCTION article_tags_sync() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'UPDATE' THEN
            IF NEW.tags IS NOT DISTINCT FROM OLD.tags
               AND NEW.created_at = OLD.created_at THEN
              RETURN NULL;
            END IF;
            DELETE FROM article_tags WHERE id = OLD.id;
          END IF;
          INSERT INTO article_tags (tag, created_at, id)
          SELECT DISTINCT t, NEW.created_at, NEW.id FROM unnest(NEW.tags) AS t
          WHERE t IS NOT NULL;
          RETURN NULL;
        END $$
    """)
    op.execute(
        "CREATE TRIGGER article_tags_sync AFTER INSERT OR UPDATE OF tags, created_at "
        "ON articles FOR EACH ROW EXECUTE FUNCTION article_tags_sync()"
    )


def downgrade():
    op.execute("DROP TRIGGER article_tags_sync ON articles")
    op.drop_table("article_tags")
    op.drop_index("ix_articles_created_at_id", table_name="articles")
    op.drop_table("articles")
    op.execute("DROP FUNCTION article_tags_sync()")
