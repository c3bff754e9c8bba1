"""processed events"""

from servicekit.migrations import create_processed_events_table

revision = "0001"
down_revision = None


def upgrade():
    create_processed_events_table()


def downgrade():
    from alembic import op

    op.drop_table("processed_events")
