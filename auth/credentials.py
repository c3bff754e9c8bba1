"""Applying users events to the credentials table, in any order."""

from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import insert

from servicekit.db import utcnow

from .models import Credential

NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def apply_user_event(session, event_type, data, occurred_at):
    """Make the credentials reflect the newest known state of the user.

    Events may arrive late, twice or out of order (an update before its add):
    each field moves only forward in ``version`` (the user's ``updatedDate``),
    the token generation only upwards, and a delete is final.
    """
    # Lock the user's row (creating a blank one first) so that two events
    # of one user are applied one after the other.
    session.execute(
        insert(Credential)
        .values(user_id=data["id"], role="regular", version=NEVER)
        .on_conflict_do_nothing()
    )
    cred = session.get(Credential, data["id"], with_for_update=True, populate_existing=True)
    if cred.deleted_at is not None:
        return
    if event_type == "user_deleted":
        cred.deleted_at = occurred_at
        cred.password_hash = None
        return
    version = data["updatedDate"]
    if data["passwordHash"] and (version >= cred.version or cred.password_hash is None):
        cred.password_hash = data["passwordHash"]
    generation = data["tokenGeneration"]  # None: an event from before generations
    if generation is not None and generation > cred.token_generation:
        cred.token_generation = generation
        # Auth's clock, not the event's: until now it issued tokens of the old
        # generation, and gateways must refuse those for a token's lifetime.
        cred.tokens_valid_from = utcnow()
    if version > cred.version:
        cred.email = data["emailAddress"]
        cred.role = data["role"]
        cred.version = version
