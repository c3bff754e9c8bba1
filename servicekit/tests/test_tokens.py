import base64
import json
import time

import jwt
import pytest

from servicekit.tokens import InvalidToken, TokenVerifier, issue_token, verify_token

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


def test_a_remembered_token_is_refused_once_it_expires(monkeypatch):
    verifier = TokenVerifier(SECRET)
    now = time.time()
    token = issue_token(SECRET, user_id="u1", email="a@b.c", role="regular", ttl_seconds=60)
    assert verifier.verify(token)["sub"] == "u1"
    monkeypatch.setattr(time, "time", lambda: now + 61)
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token)  # remembered as valid, but its exp has passed
    assert token not in verifier._valid  # forgotten: the next time is a full check


def test_only_valid_tokens_are_remembered_and_at_most_max_entries():
    verifier = TokenVerifier(SECRET, max_entries=2)
    tokens = [
        issue_token(SECRET, user_id=f"u{n}", email="a@b.c", role="regular", ttl_seconds=60)
        for n in range(3)
    ]
    forged = issue_token(
        "another secret", user_id="u9", email="a@b.c", role="admin", ttl_seconds=60
    )
    with pytest.raises(InvalidToken):
        verifier.verify(forged)
    for token in tokens:
        verifier.verify(token)
    assert list(verifier._valid) == tokens[1:]  # the oldest forgotten; the forged one never kept
    claims = verifier.verify(tokens[2])
    claims["role"] = "admin"  # a caller's copy: what is remembered stays as verified
    assert verifier.verify(tokens[2])["role"] == "regular"
