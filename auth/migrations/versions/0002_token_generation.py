"""Revision 0002 (after 0001): credentials.token_generation, the user's token
generation (the ``gen`` claim of every token; older ones are refused)."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade():
    op.add_column(
        "credentials",
        sa.Column("token_generation", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade():
    op.drop_column("credentials", "token_generation")
