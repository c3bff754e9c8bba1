"""Login throttling, shared by every auth replica through its database.

Failures are counted per key in a window of ``WINDOW`` from a key's first
failure. A key reaching its limit is blocked for ``FIRST_BLOCK``, doubled
with each further failure up to ``MAX_BLOCK``. Three keys count each failure:

- ``pair``: one account from one client address, 5. This is what stops a
  guesser; the owner, at another address, can still log in.
- ``client``: one client address, over every account, 20: one address
  guessing many accounts.
- ``account``: one account from any address, 100: many addresses guessing
  one account. This one blocks the owner too, so it is set far above what a
  person mistyping reaches.

A successful login clears its pair's count only: the other two count what
others did.
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
LIMITS = {"pair": 5, "client": 20, "account": 100}
# Doublings after which FIRST_BLOCK exceeds MAX_BLOCK.
_DOUBLINGS = math.ceil(math.log2(MAX_BLOCK / FIRST_BLOCK))


def throttle_keys(email, client):
    """The keys a login for ``email`` from ``client`` counts against. Without
    a client address (an RPC from ``nameko shell``), those callers share one."""
    account = email.lower()
    keys = {"pair": f"pair:{client or ''}\n{account}", "account": f"account:{account}"}
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
    table = LoginThrottle.__table__
    window_expired = table.c.window_started_at < now - WINDOW
    for kind, key in keys.items():
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
            # The exponent bounded: many failures at once must not overflow.
            block = min(FIRST_BLOCK * 2 ** min(excess, _DOUBLINGS), MAX_BLOCK)
            row = session.get(LoginThrottle, key)
            row.blocked_until = now + block


def clear_pair(session, keys):
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == keys["pair"]))
