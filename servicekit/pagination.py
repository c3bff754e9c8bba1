"""Keyset pagination, newest first, with opaque and tamper-evident cursors.

A page is ``WHERE (created_at, id) < cursor ORDER BY created_at DESC, id DESC
LIMIT n``: served by an index on ``(created_at, id)``, so page 1 and page
50,000 cost the same. The cursor is the last row's key, signed, so a client
cannot forge one (a tampered cursor is a 400, not a silent jump).
"""

import base64
import hashlib
import hmac
import json
import logging
import uuid
from datetime import datetime

from marshmallow import ValidationError as SchemaError
from marshmallow import fields, validate
from nameko.extensions import DependencyProvider
from sqlalchemy import tuple_

from .errors import BadRequest
from .schemas import WireSchema

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
CURSOR_SECRET_KEY = "CURSOR_SECRET"


class PageQuerySchema(WireSchema):
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT)
    )
    cursor = fields.String(load_default=None, allow_none=True)


def load_query(schema, params):
    """Validate list parameters; a bad one is a 400 naming the field."""
    try:
        return schema.load({k: v for k, v in (params or {}).items() if v is not None})
    except SchemaError as err:
        raise BadRequest("Invalid query parameters.", err.messages) from None


def cursor_key(config):
    """The key that signs list cursors: ``CURSOR_SECRET``, the same in every
    copy of a service. In development, when unset, one derived from
    ``JWT_SECRET``; with ``APP_ENV=production``, ``None``: a key of its own
    is required (one that is the tokens' key would let one stand for the
    other)."""
    key, tokens_key = config.get(CURSOR_SECRET_KEY), config.get("JWT_SECRET")
    if config.get("APP_ENV") == "production" and key in (None, "", tokens_key):
        return None
    return key or f"cursors, from JWT_SECRET: {tokens_key}"


class CursorKey(DependencyProvider):
    """``self.cursor_key`` in a worker (:func:`cursor_key`); a service in
    production without one refuses to start."""

    def setup(self):
        self.key = cursor_key(self.container.config)
        if self.key is None:
            message = "APP_ENV=production: set CURSOR_SECRET (it signs list cursors) to a secret of its own."
            log.critical("%s", message)
            raise SystemExit(f"refusing to start: {message}")

    def get_dependency(self, worker_ctx):
        return self.key


def _signature(secret, body):
    key = hashlib.sha256(b"cursor:" + secret.encode()).digest()
    return hmac.new(key, body, hashlib.sha256).digest()[:12]


def encode_cursor(secret, created_at, row_id, rank=None):
    place = [created_at.isoformat(), str(row_id), *([] if rank is None else [rank])]
    body = json.dumps(place, separators=(",", ":")).encode()
    token = body + b"." + _signature(secret, body)
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def decode_cursor(secret, cursor, ranked=False):
    """``(created_at, id)``, or ``(created_at, id, rank)`` for a ranked list:
    a cursor of another kind of list is refused like a forged one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body, signature = raw[:-13], raw[-12:]
        if raw[-13:-12] != b"." or not hmac.compare_digest(signature, _signature(secret, body)):
            raise ValueError("bad signature")
        place = json.loads(body)
        if len(place) != (3 if ranked else 2):
            raise ValueError("a cursor of another list")
        created_at, row_id = datetime.fromisoformat(place[0]), uuid.UUID(place[1])
        return (created_at, row_id, float(place[2])) if ranked else (created_at, row_id)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise BadRequest("Invalid cursor.", {"cursor": ["Not a cursor from this API."]}) from None


def keyset_page(connection, query, key, *, limit, cursor, secret, rank=None):
    """Run one page of the Core ``select`` ``query``, newest first by
    ``key``'s ``created_at`` and ``id`` (best ``rank`` first, if given: an
    expression the query selects as ``rank``); return ``(rows as mappings,
    next_cursor)``."""
    order = [key.created_at, key.id] if rank is None else [rank, key.created_at, key.id]
    if cursor:
        created_at, row_id, *ranked = decode_cursor(secret, cursor, ranked=rank is not None)
        query = query.where(tuple_(*order) < tuple_(*ranked, created_at, row_id))
    query = query.order_by(*(column.desc() for column in order)).limit(limit + 1)
    rows = connection.execute(query).mappings().all()
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor(secret, last["created_at"], last["id"], last.get("rank"))
