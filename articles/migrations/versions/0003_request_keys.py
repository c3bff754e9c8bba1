"""Revision 0003 (after 0002): request_keys, the answers of requests with an
Idempotency-Key, kept until they expire."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"


def upgrade():
    op.create_table(
        "request_keys",
        sa.Column("caller", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("answer", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("caller", "key"),
    )
    op.create_index("ix_request_keys_expires_at", "request_keys", ["expires_at"])


def downgrade():
    op.drop_index("ix_request_keys_expires_at", table_name="request_keys")
    op.drop_table("request_keys")
