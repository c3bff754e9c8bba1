"""Password hashing, shared by users (hashes) and auth (verifies).

argon2id at the OWASP minimum (19 MiB, 2 passes, 1 lane) keeps a hash around
20 ms; the work runs in a real OS thread so it does not stall the eventlet hub.
"""

from eventlet import tpool
from passlib.context import CryptContext

_context = CryptContext(
    schemes=["argon2"],
    argon2__memory_cost=19456,
    argon2__time_cost=2,
    argon2__parallelism=1,
)

# Verified against when the account is unknown, so that a wrong email costs
# the same time as a wrong password (no account enumeration by timing).
_DUMMY_HASH = _context.hash("not-a-real-password")


def hash_password(password):
    return tpool.execute(_context.hash, password)


def verify_password(password, password_hash):
    if not password_hash:
        tpool.execute(_context.verify, password, _DUMMY_HASH)
        return False
    try:
        return tpool.execute(_context.verify, password, password_hash)
    except ValueError:  # a malformed stored hash never matches
        return False
