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


class TokenVerifier:
    """:func:`verify_token` with ``secret``, remembering the tokens it found
    valid: a client sends the same token with every request, and checking
    its signature and claims again costs the gateway ~60 µs of CPU a
    request. A remembered token is still refused once its ``exp`` is past;
    nothing else about a valid token changes with time (revocations are the
    caller's to check, on the claims returned). Only valid tokens are
    remembered, at most ``max_entries`` (the oldest forgotten first): a
    stranger cannot fill it without the secret."""

    def __init__(self, secret, max_entries=4096):
        self.secret = secret
        self.max_entries = max_entries
        self._valid = {}  # token -> its claims

    def verify(self, token):
        """The token's claims (a copy) or :class:`InvalidToken`."""
        claims = self._valid.get(token)
        if claims is None:
            claims = verify_token(self.secret, token)
            if len(self._valid) >= self.max_entries:
                del self._valid[next(iter(self._valid))]
            self._valid[token] = claims
        elif claims["exp"] <= time.time():  # as PyJWT decides it (no leeway)
            del self._valid[token]
            raise InvalidToken("The token has expired.")
        return dict(claims)
