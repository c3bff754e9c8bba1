"""users and outbox"""

import sqlalchemy as sa
from alembic import op

from servicekit.migrations import create_outbox_table

revision = "0001"
down_revision = None


def upgrade():
    create_outbox_table()
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("email_address", sa.String(length=320), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("tags", sa.ARRAY(sa.String()), nullable=False),
        sa.Column("images_uid", sa.ARRAY(sa.String()), nullable=False),
        sa.Column("likes", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_users_created_at_id", "users", ["created_at", "id"])
    op.create_index(
        "uq_users_email_lower", "users", [sa.literal_column("lower(email_address)")], unique=True
    )


def downgrade():
    op.drop_table("users")
    op.drop_table("outbox")
