"""Revision 0003 (after 0002): users.token_generation, one more with each
password or role change (tokens of an older generation are refused)."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade():
    op.add_column(
        "users",
        sa.Column("token_generation", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade():
    op.drop_column("users", "token_generation")
