from sqlalchemy import ARRAY, Index, Integer, String, Text, func
from sqlalchemy.orm import DeclarativeBase, mapped_column

from servicekit.db import id_column, timestamp_column
from servicekit.outbox import OutboxMixin
from servicekit.request_keys import RequestKeyMixin


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id = id_column()
    first_name = mapped_column(String(100), nullable=False)
    last_name = mapped_column(String(100), nullable=False)
    email_address = mapped_column(String(320), nullable=False)
    description = mapped_column(Text, nullable=False, default="")
    role = mapped_column(String(16), nullable=False, default="regular")
    tags = mapped_column(ARRAY(String), nullable=False, default=list)
    images_uid = mapped_column(ARRAY(String), nullable=False, default=list)
    likes = mapped_column(Integer, nullable=False, default=0)
    password_hash = mapped_column(String(255), nullable=False)
    # One more with each password or role change: tokens issued before carry
    # a lower generation, and gateways refuse them (see users.service.update).
    token_generation = mapped_column(Integer, nullable=False, default=0, server_default="0")
    created_at = timestamp_column()
    updated_at = timestamp_column()

    __table_args__ = (
        # Unique ignoring case: Bob@x.org and bob@x.org are one account.
        Index("uq_users_email_lower", func.lower(email_address), unique=True),
        Index("ix_users_created_at_id", created_at, id),
    )


class OutboxMessage(OutboxMixin, Base):
    pass


class RequestKey(RequestKeyMixin, Base):
    pass
