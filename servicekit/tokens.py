"""JSON Web Tokens: issued by auth, verified by the gateway without an RPC.

The claims: ``sub`` (the user id), ``email``, ``role``, ``iat``, ``exp`` and
``gen``, the user's token generation when the token was issued (it moves on
with each password or role change; gateways refuse a token whose ``gen`` is
behind the user's). A token from before ``gen`` existed counts as generation 0.
"""

import time

import jwt

ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The token is missing, malformed, forged or expired; str() says which."""


def issue_token(secret, *, user_id, email, role, ttl_seconds, generation=0, now=None):
    issued_at = int(now if now is not None else time.time())
    claims = {
        "sub": str(user_id),
        "email": email,
        "role": role,
        "gen": int(generation),
        "iat": issued_at,
        "exp": issued_at + int(ttl_seconds),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret, token):
    """Return the claims of a valid token or raise :class:`InvalidToken`.

    Only HS256 is accepted, so ``alg: none`` and algorithm swaps fail. The
    claims always have ``gen`` (0 for a token issued before it existed).
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "role", "iat", "exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("The token has expired.") from None
    except jwt.InvalidTokenError:
        raise InvalidToken("The token is invalid.") from None
    generation = claims.setdefault("gen", 0)
    # bool is an int too; only a whole number >= 0 is a generation.
    if type(generation) is not int or generation < 0:
        raise InvalidToken("The token is invalid.")
    return claims
