"""Revision 0002 (after 0001): the articles table, with ``likes`` as its
``meta`` counter, and its tag index (servicekit.news)."""

import sqlalchemy as sa

from servicekit.news import create_news_item_tables, drop_news_item_tables

revision = "0002"
down_revision = "0001"


def upgrade():
    likes = sa.Column("likes", sa.Integer(), nullable=False)
    create_news_item_tables("articles", "article_tags", likes)


def downgrade():
    drop_news_item_tables("articles", "article_tags")
