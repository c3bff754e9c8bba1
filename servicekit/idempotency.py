"""Idempotent event handlers: each ``eventId`` takes effect once.

The handler records the event id in its own database, in the same transaction
as its effect. A redelivered event finds the record and changes nothing.
"""

import logging
import uuid

from sqlalchemy import DateTime, String, Uuid
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, mapped_column

from .db import utcnow

log = logging.getLogger(__name__)


class ProcessedEventMixin:
    """Columns of a service's ``processed_events`` table."""

    __tablename__ = "processed_events"

    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    handler: Mapped[str] = mapped_column(String(100), primary_key=True)
    processed_at = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class MalformedEvent(Exception):
    """The message is not an event of the contract's shape."""


def event_id_of(payload):
    try:
        return uuid.UUID(str(payload["eventId"]))
    except (KeyError, TypeError, ValueError):
        raise MalformedEvent(f"event without a valid eventId: {payload!r:.200}") from None


def claim_event(session, model, payload, handler):
    """Record the event for ``handler``; ``False`` if it was handled before.

    Call it first in the handler's transaction: a concurrent duplicate waits
    on the primary key and then sees the row, so only one copy applies.
    """
    event_id = event_id_of(payload)
    table = model.__table__  # Core: the ORM's bulk-insert path costs more than the statement
    inserted = session.execute(
        insert(table)
        .values(event_id=event_id, handler=handler, processed_at=utcnow())
        .on_conflict_do_nothing()
        .returning(table.c.event_id)
    ).first()
    if inserted is None:
        log.info("event %s already handled by %s; skipped", event_id, handler)
        return False
    return True
