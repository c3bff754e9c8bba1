from sqlalchemy import DateTime, Index, Integer, String, Uuid, text
from sqlalchemy.orm import DeclarativeBase, mapped_column

from servicekit.db import timestamp_column
from servicekit.idempotency import ProcessedEventMixin


class Base(DeclarativeBase):
    pass


class Credential(Base):
    """Login details of one user, kept from the users events.

    ``version`` is the ``updatedDate`` of the newest event applied, so a late
    or redelivered older event cannot undo a newer one. A deleted user keeps a
    tombstone row (``deleted_at``): a late ``user_added`` cannot revive it.
    """

    __tablename__ = "credentials"

    user_id = mapped_column(Uuid, primary_key=True)
    email = mapped_column(String(320), nullable=True)
    role = mapped_column(String(16), nullable=False, default="regular")
    password_hash = mapped_column(String(255), nullable=True)
    version = mapped_column(DateTime(timezone=True), nullable=False)
    # The user's token generation (users: one more with each password or role
    # change), put in every token as ``gen``; only ever moves forward.
    token_generation = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # When auth learnt the current token_generation (None: it never moved).
    # Gateways refuse tokens of an older generation; `revocations` lists the
    # users whose generation moved within a token's lifetime.
    tokens_valid_from = mapped_column(DateTime(timezone=True), nullable=True)
    deleted_at = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        Index(
            "uq_credentials_live_email",
            text("lower(email)"),
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )


class LoginThrottle(Base):
    """Failed logins per key: an account from one client address, a client
    address, an account from anywhere (see auth.throttle)."""

    __tablename__ = "login_throttle"

    key = mapped_column(String(400), primary_key=True)
    failures = mapped_column(Integer, nullable=False, default=0)
    window_started_at = timestamp_column()
    blocked_until = mapped_column(DateTime(timezone=True), nullable=True)


class ProcessedEvent(ProcessedEventMixin, Base):
    pass
