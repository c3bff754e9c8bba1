"""JSON Web Tokens: issued by auth, verified by the gateway without an RPC."""

import time

import jwt

ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The token is missing, malformed, forged or expired; str() says which."""


def issue_token(secret, *, user_id, email, role, ttl_seconds, now=None):
    issued_at = int(now if now is not None else time.time())
    claims = {
        "sub": str(user_id),
        "email": email,
        "role": role,
        "iat": issued_at,
        "exp": issued_at + int(ttl_seconds),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret, token):
    """Return the claims of a valid token or raise :class:`InvalidToken`.

    Only HS256 is accepted, so ``alg: none`` and algorithm swaps fail.
    """
    try:
        return jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "role", "iat", "exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("The token has expired.") from None
    except jwt.InvalidTokenError:
        raise InvalidToken("The token is invalid.") from None
