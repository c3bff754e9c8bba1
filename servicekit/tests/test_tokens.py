import base64
import json
import time

import jwt
import pytest

from servicekit.tokens import InvalidToken, issue_token, verify_token

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def make(**overrides):
    claims = {"user_id": "u1", "email": "a@b.c", "role": "regular", "ttl_seconds": 60}
    return issue_token(SECRET, **{**claims, **overrides})


def test_round_trip_has_contract_claims():
    claims = verify_token(SECRET, make())
    assert {"sub", "email", "role", "iat", "exp"} <= set(claims)
    assert claims["sub"] == "u1"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(make(now=time.time() - 3600), id="expired"),
        pytest.param(
            issue_token(
                "another-secret-of-sufficient-length!!",
                user_id="u1",
                email="a",
                role="admin",
                ttl_seconds=60,
            ),
            id="foreign signature",
        ),
        pytest.param("not.a.token", id="garbage"),
    ],
)
def test_bad_tokens_are_refused(token):
    with pytest.raises(InvalidToken):
        verify_token(SECRET, token)


def test_alg_none_is_refused():
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims = jwt.decode(make(), options={"verify_signature": False})
    unsigned = f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
    with pytest.raises(InvalidToken):
        verify_token(SECRET, unsigned)
