from datetime import UTC, datetime
from uuid import uuid4

import pytest
from nameko.containers import ServiceContainer

from servicekit.errors import BadRequest
from servicekit.pagination import CursorKey, decode_cursor, encode_cursor
from servicekit.rpc import rpc

SECRET = "cursor-secret"


def test_cursor_round_trips():
    key = (datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), uuid4())
    assert decode_cursor(SECRET, encode_cursor(SECRET, *key)) == key


@pytest.mark.parametrize("cursor", ["", "abc", "!!!", "x" * 200])
def test_garbage_cursor_is_bad_request(cursor):
    with pytest.raises(BadRequest):
        decode_cursor(SECRET, cursor)


def test_cursor_from_another_secret_or_edited_is_bad_request():
    cursor = encode_cursor(SECRET, datetime.now(UTC), uuid4())
    with pytest.raises(BadRequest):
        decode_cursor("other-secret", cursor)
    flipped = cursor[:5] + ("A" if cursor[5] != "A" else "B") + cursor[6:]
    with pytest.raises(BadRequest):
        decode_cursor(SECRET, flipped)


class Lister:
    name = "lister"
    cursor_key = CursorKey()

    @rpc
    def key(self):
        return self.cursor_key


@pytest.mark.parametrize("cursor_secret", [None, "", "the tokens' key"])
def test_production_refuses_to_sign_cursors_without_a_key_of_their_own(cursor_secret):
    config = {
        "AMQP_URI": "memory://",
        "APP_ENV": "production",
        "JWT_SECRET": "the tokens' key",
        "CURSOR_SECRET": cursor_secret,
    }
    with pytest.raises(SystemExit, match="CURSOR_SECRET"):
        ServiceContainer(Lister, config).start()


def test_development_derives_a_cursor_key_that_is_not_the_tokens_key():
    container = ServiceContainer(Lister, {"AMQP_URI": "memory://", "JWT_SECRET": "t"})
    (provider,) = container.dependencies
    provider.setup()
    assert provider.key and provider.key != "t"
