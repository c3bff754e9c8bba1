"""Writes that take effect once: the ``Idempotency-Key`` of a request.

A write RPC may carry ``request_key={"key", "caller", "fingerprint",
"seconds"}``. The service claims the key first in the transaction of the
change, and keeps its answer in the same transaction (both done for it by
:mod:`servicekit.writes`):

- the key seen before with the same fingerprint (the same request): the
  first answer comes back, and nothing is done again;
- with another fingerprint: 422, the key names another request;
- while the first request still runs (its transaction holds the key): 409.

Keys are scoped by caller and kept ``seconds``: a client's for 24 h; the
gateway gives every write without one a key of its own, kept for minutes, so
that an RPC redelivered after a crash does not act twice.
"""

from datetime import timedelta

from nameko.extensions import Extension
from sqlalchemy import DateTime, String, bindparam, insert, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import mapped_column

from .db import utcnow
from .errors import BadRequest, Conflict, ValidationError
from .retention import PrunedTable

MAX_SECONDS = 24 * 3600


class RequestKeyMixin:
    """Columns of a service's ``request_keys`` table."""

    __tablename__ = "request_keys"

    caller = mapped_column(String(64), primary_key=True)
    key = mapped_column(String(255), primary_key=True)
    fingerprint = mapped_column(String(64), nullable=False)
    answer = mapped_column(JSONB, nullable=True)
    expires_at = mapped_column(DateTime(timezone=True), nullable=False, index=True)


class Claim:
    """A claimed key: ``answer`` if the request was done before (replay it);
    otherwise ``keep(answer)`` before the commit."""

    def __init__(self, store=None, answer=None):
        self._store = store
        self.answer = answer

    def keep(self, answer):
        if self._store is not None:
            self._store(answer)


NO_KEY = Claim()


class RequestKeys(Extension):
    """The service's request keys (``RequestKeys(RequestKey)``), inside
    :class:`servicekit.writes.Changes`, which claims a write RPC's key with
    :meth:`claim`. Expired keys are deleted in the background.

    In Core statements, not the ORM's unit of work: a key is read, then
    written once, with its answer, just before the commit."""

    def __init__(self, model):
        self.model = model
        self.expired = PrunedTable(model, "expires_at")
        table = model.__table__
        this_key = (table.c.caller == bindparam("caller")) & (table.c.key == bindparam("key"))
        self._select = select(table.c.fingerprint, table.c.answer, table.c.expires_at).where(
            this_key
        )
        self._insert = insert(table)
        self._update = (
            update(table)
            .where(
                (table.c.caller == bindparam("at_caller")) & (table.c.key == bindparam("at_key"))
            )
            .values(
                fingerprint=bindparam("fingerprint"),
                expires_at=bindparam("expires_at"),
                answer=bindparam("answer"),
            )
        )

    def claim(self, session, request_key):
        if request_key is None:
            return NO_KEY
        caller, key, fingerprint, seconds = _parsed(request_key)
        # Held until this transaction ends: a repeat arriving meanwhile is told so.
        held = session.execute(
            text("SELECT pg_try_advisory_xact_lock(hashtextextended(:name, 0))"),
            {"name": f"request-key\n{caller}\n{key}"},
        ).scalar()
        if not held:
            raise Conflict(
                "A request with this Idempotency-Key is still running; try again when it is done.",
                {"Idempotency-Key": ["In use by a request still running."]},
            )
        now = utcnow()
        row = session.execute(self._select, {"caller": caller, "key": key}).first()
        if row is not None and row.expires_at > now and row.answer is not None:
            if row.fingerprint != fingerprint:
                raise ValidationError(
                    "This Idempotency-Key was used for another request.",
                    {"Idempotency-Key": ["Used with another method, path or body."]},
                )
            return Claim(answer=row.answer)
        values = {"fingerprint": fingerprint, "expires_at": now + timedelta(seconds=seconds)}
        if row is None:
            values |= {"caller": caller, "key": key}
            return Claim(
                store=lambda answer: session.execute(self._insert, {**values, "answer": answer})
            )
        # Expired (or left without an answer): taken over by this request.
        values |= {"at_caller": caller, "at_key": key}
        return Claim(
            store=lambda answer: session.execute(self._update, {**values, "answer": answer})
        )


def _parsed(request_key):
    try:
        caller, key = str(request_key["caller"]), str(request_key["key"])
        fingerprint = str(request_key.get("fingerprint", ""))
        seconds = float(request_key.get("seconds", MAX_SECONDS))
    except (TypeError, KeyError, ValueError):
        raise BadRequest(
            'request_key must be {"caller", "key", "fingerprint", "seconds"}.'
        ) from None
    if not (0 < seconds <= MAX_SECONDS) or not key or len(key) > 255 or len(caller) > 64:
        raise BadRequest("request_key is out of bounds.", {"request_key": [str(request_key)[:200]]})
    return caller, key, fingerprint[:64], seconds
