"""Idempotency-Key fingerprints, unit level: keyed, and blind to passwords."""

import hashlib
import json
from types import SimpleNamespace

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.authentication import Caller
from gateway.requests import RequestFingerprints, RequestKeys

SECRET = "s" * 32
USER = {"firstName": "Ada", "emailAddress": "ada@example.com", "password": "first password"}


def fingerprint(body, secret=SECRET, method="POST", path="/api/users"):
    return RequestFingerprints(secret).of(method, path, body)


def test_a_fingerprint_is_an_hmac_under_a_key_of_the_secret_not_a_plain_hash():
    plain = hashlib.sha256(json.dumps(["POST", "/api/users", USER], sort_keys=True).encode())
    assert fingerprint(USER) != plain.hexdigest()
    assert fingerprint(USER) != fingerprint(USER, secret="t" * 32)
    assert len(fingerprint(USER)) == 64  # what request_keys.fingerprint holds
    assert SECRET not in repr(RequestFingerprints(SECRET))


def test_a_fingerprint_ignores_the_password_and_key_order_but_nothing_else():
    reordered = dict(reversed(list({**USER, "password": "another one"}.items())))
    assert fingerprint(reordered) == fingerprint(USER)
    assert fingerprint({**USER, "firstName": "Augusta"}) != fingerprint(USER)
    assert fingerprint(USER, method="PUT") != fingerprint(USER)
    assert fingerprint(USER, path="/api/users/u1") != fingerprint(USER)
    # Only the body's own password field: one nested deeper is data like any other.
    assert fingerprint({"meta": {"password": "a"}}) != fingerprint({"meta": {"password": "b"}})


def test_request_keys_fingerprint_with_the_gateways_secret():
    keys = RequestKeys()
    keys.container = SimpleNamespace(config={"JWT_SECRET": SECRET})
    keys.setup()
    environ = EnvironBuilder(
        method="POST", path="/api/users", json=USER, headers={"Idempotency-Key": "k-1"}
    ).get_environ()
    key = keys.of(Request(environ), Caller("u1", "admin", None), USER)
    assert key == {
        "caller": "u1",
        "key": "k-1",
        "fingerprint": RequestFingerprints(SECRET).of("POST", "/api/users", USER),
        "seconds": 24 * 3600,
    }
