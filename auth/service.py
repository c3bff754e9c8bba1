"""Auth: login credentials (kept from the users events) and tokens.

Auth never calls the users service: ``user_added``/``user_updated``/
``user_deleted`` bring everything it needs, each applied once by ``eventId``.
"""

from datetime import timedelta

from marshmallow import ValidationError as MarshmallowError
from sqlalchemy import func, select

from servicekit.base import ServiceBase
from servicekit.db import Database, utcnow
from servicekit.dead_letters import DeadLetters, dead_letter_rpcs
from servicekit.errors import InvalidCredentials
from servicekit.idempotency import MalformedEvent, claim_event
from servicekit.passwords import verify_password
from servicekit.retention import Retention
from servicekit.retry import retrying_event_handler
from servicekit.rpc import rpc
from servicekit.schemas import load
from servicekit.tokens import issue_token

from . import throttle
from .credentials import apply_user_event
from .models import Base, Credential, LoginThrottle, ProcessedEvent
from .schemas import login_call_schema, user_event_schema


class AuthService(ServiceBase):
    name = "auth"

    db = Database(Base)
    dead_letters = DeadLetters()
    processed_events = Retention(
        ProcessedEvent, "processed_at", days_setting="PROCESSED_EVENTS_RETENTION_DAYS", days=30
    )
    # Failures older than a day no longer count (throttle.WINDOW) nor block.
    old_login_failures = Retention(LoginThrottle, "window_started_at", days=1)

    # Operators: n.rpc.auth.dead_letters_list() / _replay(id) / _discard(id)
    dead_letters_list, dead_letters_replay, dead_letters_discard = dead_letter_rpcs()

    @rpc
    def login(self, email_address, password, client=None):
        """Check a password; return ``{"auth": True, "token", "expiresIn"}``.

        A wrong password and an unknown email fail alike. ``client`` (the
        caller's address, from the gateway) is throttled with the account
        (see auth.throttle).
        """
        sent = {"emailAddress": email_address, "password": password, "client": client}
        # A field not given is missing (not null): one message everywhere.
        fields = load(
            login_call_schema, {key: value for key, value in sent.items() if value is not None}
        )
        session = self.db.session
        now = utcnow()
        keys = throttle.throttle_keys(fields["emailAddress"], fields["client"])
        throttle.check_not_blocked(session, keys, now)
        cred = session.scalar(
            select(Credential).where(
                func.lower(Credential.email) == fields["emailAddress"].lower(),
                Credential.deleted_at.is_(None),
            )
        )
        if not verify_password(fields["password"], cred.password_hash if cred else None):
            throttle.record_failure(session, keys, now)
            session.commit()
            raise InvalidCredentials("Wrong email address or password.")
        throttle.clear_pair(session, keys)
        session.commit()
        ttl = int(self.config["JWT_TTL_SECONDS"])
        token = issue_token(
            self.config["JWT_SECRET"],
            user_id=cred.user_id,
            email=cred.email,
            role=cred.role,
            generation=cred.token_generation,
            ttl_seconds=ttl,
        )
        return {"auth": True, "token": token, "expiresIn": ttl}

    @rpc
    def revocations(self):
        """What a starting gateway needs to refuse stale tokens.

        ``{"deleted": [user ids], "generations": {user id: generation}}``: the
        users deleted, and the current token generation of every user whose
        generation moved (a password or role change), within the last
        ``JWT_TTL_SECONDS`` (tokens from before have expired).
        """
        since = utcnow() - timedelta(seconds=int(self.config["JWT_TTL_SECONDS"]))
        rows = self.db.reads.execute(
            select(Credential.user_id, Credential.deleted_at, Credential.token_generation).where(
                (Credential.deleted_at > since) | (Credential.tokens_valid_from > since)
            )
        )
        deleted, generations = [], {}
        for user_id, deleted_at, generation in rows:
            if deleted_at is not None:
                deleted.append(str(user_id))
            else:
                generations[str(user_id)] = generation
        return {"deleted": deleted, "generations": generations}

    @retrying_event_handler("users", "user_added")
    def on_user_added(self, payload):
        self._apply("user_added", payload)

    @retrying_event_handler("users", "user_updated")
    def on_user_updated(self, payload):
        self._apply("user_updated", payload)

    @retrying_event_handler("users", "user_deleted")
    def on_user_deleted(self, payload):
        self._apply("user_deleted", payload)

    @rpc
    def health(self):
        """``"starting"`` until an admin can log in (the seeded admin's
        credentials arrive by event, a moment after the first start)."""
        self.db.health()
        admin = select(Credential.user_id).where(
            Credential.role == "admin",
            Credential.deleted_at.is_(None),
            Credential.password_hash.is_not(None),
        )
        return "ok" if self.db.reads.execute(admin.limit(1)).first() else "starting"

    def _apply(self, event_type, payload):
        try:
            event = user_event_schema.load(payload)
        except MarshmallowError as exc:
            # Parked at once for an operator: no retry can fix the payload.
            raise MalformedEvent(f"malformed {event_type} event: {exc.messages}") from None
        session = self.db.session
        if claim_event(session, ProcessedEvent, payload, f"auth.{event_type}"):
            apply_user_event(session, event_type, event["data"], event["occurredAt"])
        session.commit()
