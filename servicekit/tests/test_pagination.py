from datetime import UTC, datetime
from uuid import uuid4

import pytest

from servicekit.errors import BadRequest
from servicekit.pagination import decode_cursor, encode_cursor

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
