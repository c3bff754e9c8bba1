"""The read cache's bookkeeping, without a broker: bounds, invalidation, races."""

import time
import uuid

import pytest

from gateway.broadcast import BroadcastConsumer
from gateway.cache import (
    AnswerStore,
    CachedAnswer,
    cache_key,
    etag_matches,
    etag_of,
    group_of,
    key_bytes,
)
from gateway.headers import Head


def make_store(CACHE_MAX_ENTRIES=10_000, CACHE_MAX_BYTES=64 * 2**20, CACHE_TTL_SECONDS=300):  # noqa: N803 - the settings' names
    return AnswerStore(CACHE_MAX_ENTRIES, CACHE_MAX_BYTES, CACHE_TTL_SECONDS)


def answer(resource="articles", item_id=None, body=b"{}", per_caller=False):
    return CachedAnswer(
        body, etag_of(body), [("Content-Type", "application/json")], per_caller,
        group_of(resource, item_id),
    )  # fmt: skip


def put(store, key, cached):
    assert store.store(key, cached, store.generation(cached.group[0]))


def test_least_recently_used_answer_goes_first_at_the_entry_bound():
    store = make_store(CACHE_MAX_ENTRIES=2)
    put(store, "/a", answer(item_id="1"))
    put(store, "/b", answer(item_id="2"))
    assert store.lookup("/a", authorized=False)  # /a is now the most recent
    put(store, "/c", answer(item_id="3"))

    assert store.lookup("/b", authorized=False) is None
    assert store.lookup("/a", authorized=False) and store.lookup("/c", authorized=False)
    assert store.stats()["evictions"] == 1 and store.stats()["entries"] == 2


def test_byte_bound_evicts_and_oversized_answers_are_not_kept():
    one = answer(item_id="1", body=b"x" * 1000)
    store = make_store(CACHE_MAX_BYTES=one.size * 16 * 2)  # room for 32, one may take 1/16
    for n in range(40):
        put(store, f"/{n}", answer(item_id=str(n), body=b"x" * 1000))
    assert store.bytes <= store.max_bytes
    assert store.stats()["entries"] == 32 and store.stats()["evictions"] == 8

    huge = answer(item_id="big", body=b"x" * (store.max_bytes // 8))
    assert not store.store("/big", huge, store.generation("articles"))
    assert store.lookup("/big", authorized=False) is None


def test_a_change_drops_the_item_and_every_list_page_but_no_other_item():
    store = make_store()
    item, other = str(uuid.uuid4()), str(uuid.uuid4())
    put(store, f"/api/articles/{item}", answer(item_id=item))
    put(store, f"/api/articles/{other}", answer(item_id=other))
    put(store, "/api/articles?limit=20", answer())
    put(store, "/api/articles?tag=x", answer())
    put(store, "/api/events?limit=20", answer("events"))

    store.invalidate("articles", item.upper())  # any spelling of the id

    assert store.lookup(f"/api/articles/{item}", authorized=False) is None
    assert store.lookup("/api/articles?limit=20", authorized=False) is None
    assert store.lookup("/api/articles?tag=x", authorized=False) is None
    assert store.lookup(f"/api/articles/{other}", authorized=False)
    assert store.lookup("/api/events?limit=20", authorized=False)


def test_a_fill_that_raced_a_change_is_not_kept():
    store = make_store()
    before = store.generation("articles")
    store.invalidate("articles", "1")  # heard while the RPC was on its way
    assert not store.store("/api/articles/1", answer(item_id="1"), before)
    # Another resource's change does not matter.
    before = store.generation("articles")
    store.invalidate("events", "1")
    assert store.store("/api/articles/1", answer(item_id="1"), before)


def test_clear_empties_and_refuses_fills_started_before_it():
    store = make_store()
    put(store, "/api/users/1", answer("users", "1"))
    before = store.generation("events")  # a resource never changed so far
    store.clear()
    assert store.lookup("/api/users/1", authorized=False) is None
    assert not store.store("/api/events", answer("events"), before)
    assert store.bytes == 0


def test_answers_expire_after_the_ttl():
    store = make_store(CACHE_TTL_SECONDS=0.05)
    put(store, "/a", answer())
    assert store.lookup("/a", authorized=False)
    time.sleep(0.06)
    assert store.lookup("/a", authorized=False) is None


def test_a_per_caller_answer_is_only_for_requests_without_a_token():
    store = make_store()
    put(store, "/api/users/1", answer("users", "1", per_caller=True))
    put(store, "/api/articles/1", answer("articles", "1"))
    assert store.lookup("/api/users/1", authorized=True) is None
    assert store.lookup("/api/users/1", authorized=False)
    assert store.lookup("/api/articles/1", authorized=True)


def test_zero_entries_turns_the_cache_off():
    store = make_store(CACHE_MAX_ENTRIES=0)
    assert not store.enabled
    assert not store.store("/a", answer(), store.generation("articles"))


def head(path, query=""):
    return Head("GET", path, query, None, None, "r", None)


def test_keys_ignore_a_trailing_slash_and_keep_the_routes_own_parameters():
    names = frozenset({"limit", "tag"})
    assert cache_key(head("/api/articles/"), names) == cache_key(head("/api/articles"), names)
    assert cache_key(head("/api/articles", "limit=5"), names) == ("/api/articles", ("limit", "5"))
    assert cache_key(head("/"), names) == ("/",)


def test_unknown_parameters_never_reach_the_key():
    names = frozenset({"limit", "tag"})
    plain = cache_key(head("/api/articles", "tag=x&limit=5"), names)
    assert cache_key(head("/api/articles", "junk=1&limit=5&tag=x&_=2"), names) == plain
    assert cache_key(head("/api/articles/1", "junk=1")) == ("/api/articles/1",)  # no parameters
    assert cache_key(head("/api/articles", "tag=x&tag=y"), names) is None  # refused by the route


def test_an_encoded_question_mark_in_the_path_is_not_a_query():
    names = frozenset({"tag"})
    aliased = head("/api/articles?tag=x")  # what /api/articles%3Ftag=x decodes to
    assert cache_key(aliased, names) != cache_key(head("/api/articles", "tag=x"), names)


@pytest.mark.parametrize(
    "header, matches",
    [
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ("*", True),
        ('"abcd"', False),
        ("", False),
        (None, False),
    ],
)
def test_if_none_match_uses_weak_comparison(header, matches):
    assert etag_matches(header, '"abc"') is matches


def test_listeners_hear_reconnects_not_the_first_connection():
    consumer = BroadcastConsumer()
    heard = []
    consumer.on_reconnect(lambda: heard.append(1))
    consumer._consumers_ready.send(None)  # as after the first connection
    consumer._connected_before = True
    consumer.on_consume_ready(None, None, [])
    consumer.on_consume_ready(None, None, [])
    assert heard == [1, 1]

    fresh = BroadcastConsumer()
    fresh.on_reconnect(lambda: heard.append(2))
    fresh.on_consume_ready(None, None, [])  # the first connection
    assert 2 not in heard


def test_key_bytes_count_in_the_memory_bound():
    long_query = head("/api/articles", "tag=" + "x" * 5000)
    key = cache_key(long_query, frozenset({"tag"}))
    body = b"{}"
    with_key = CachedAnswer(body, etag_of(body), [], False, group_of("articles"), key_bytes(key))
    without = CachedAnswer(body, etag_of(body), [], False, group_of("articles"))
    assert with_key.size - without.size == key_bytes(key) > 5000
