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


def test_a_token_carries_the_users_token_generation():
    assert verify_token(SECRET, make(generation=3))["gen"] == 3
    assert verify_token(SECRET, make())["gen"] == 0


def test_a_token_without_gen_from_before_generations_counts_as_generation_0():
    now = int(time.time())
    claims = {"sub": "u1", "email": "a@b.c", "role": "regular", "iat": now, "exp": now + 60}
    assert verify_token(SECRET, jwt.encode(claims, SECRET, algorithm="HS256"))["gen"] == 0


@pytest.mark.parametrize("generation", [-1, "2", 1.5, True, None])
def test_a_gen_that_is_no_generation_is_refused(generation):
    now = int(time.time())
    claims = {"sub": "u1", "role": "regular", "gen": generation, "iat": now, "exp": now + 60}
    with pytest.raises(InvalidToken):
        verify_token(SECRET, jwt.encode(claims, SECRET, algorithm="HS256"))
