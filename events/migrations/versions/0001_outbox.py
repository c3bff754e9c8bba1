"""outbox

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from servicekit.migrations import create_outbox_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    create_outbox_table()


def downgrade():
    from alembic import op

    op.drop_table("outbox")
