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
    # When the role last changed (None: never). Gateways refuse tokens that
    # carry the old role; `revocations` lists these users for them.
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
    """Failed logins per key (an account or a client address)."""

    __tablename__ = "login_throttle"

    key = mapped_column(String(400), primary_key=True)
    failures = mapped_column(Integer, nullable=False, default=0)
    window_started_at = timestamp_column()
    blocked_until = mapped_column(DateTime(timezone=True), nullable=True)


class ProcessedEvent(ProcessedEventMixin, Base):
    pass
