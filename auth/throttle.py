"""Login throttling, shared by every auth replica through its database.

Failures are counted per key (the account's email and the client's address)
in a sliding window. Past the limit the key is blocked, for a time that
doubles with each further failure, up to ``MAX_BLOCK``.
"""

import math
from datetime import timedelta

from sqlalchemy import case, delete, select
from sqlalchemy.dialects.postgresql import insert

from servicekit.errors import TooManyRequests

from .models import LoginThrottle

WINDOW = timedelta(minutes=15)
FIRST_BLOCK = timedelta(seconds=30)
MAX_BLOCK = timedelta(minutes=15)
LIMITS = {"account": 5, "client": 20}


def throttle_keys(email, client):
    keys = {"account": f"account:{email.lower()}"}
    if client:
        keys["client"] = f"client:{client}"
    return keys


def check_not_blocked(session, keys, now):
    blocked_until = session.scalar(
        select(LoginThrottle.blocked_until)
        .where(LoginThrottle.key.in_(keys.values()), LoginThrottle.blocked_until > now)
        .order_by(LoginThrottle.blocked_until.desc())
        .limit(1)
    )
    if blocked_until is not None:
        retry_after = max(1, math.ceil((blocked_until - now).total_seconds()))
        raise TooManyRequests(
            f"Too many failed logins; try again in {retry_after} s.",
            {"retryAfter": retry_after},
        )


def record_failure(session, keys, now):
    for kind, key in keys.items():
        table = LoginThrottle.__table__
        window_expired = table.c.window_started_at < now - WINDOW
        stmt = insert(LoginThrottle).values(key=key, failures=1, window_started_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "failures": case((window_expired, 1), else_=table.c.failures + 1),
                "window_started_at": case((window_expired, now), else_=table.c.window_started_at),
            },
        ).returning(table.c.failures)
        failures = session.execute(stmt).scalar_one()
        excess = failures - LIMITS[kind]
        if excess >= 0:
            block = min(FIRST_BLOCK * 2**excess, MAX_BLOCK)
            row = session.get(LoginThrottle, key)
            row.blocked_until = now + block


def clear_account(session, keys):
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == keys["account"]))
