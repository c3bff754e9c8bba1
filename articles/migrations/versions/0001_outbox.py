"""outbox"""

from servicekit.migrations import create_outbox_table

revision = "0001"
down_revision = None


def upgrade():
    create_outbox_table()


def downgrade():
    from alembic import op

    op.drop_table("outbox")
