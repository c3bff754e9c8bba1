"""Revision 0002 (after 0001): the events table, a news item (servicekit.news)
with ``attending`` as its ``meta`` counter and an ``event_date``, indexed for
the ``from``/``to`` filter; and the events' tag index."""

import sqlalchemy as sa
from alembic import op

from servicekit.news import create_news_item_tables, drop_news_item_tables

revision = "0002"
down_revision = "0001"


def upgrade():
    create_news_item_tables(
        "events",
        "event_tags",
        sa.Column("attending", sa.Integer(), nullable=False),
        sa.Column("event_date", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_events_event_date", "events", ["event_date"])


def downgrade():
    drop_news_item_tables("events", "event_tags")
