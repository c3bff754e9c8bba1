"""Errors and cost, through the gateway: what is too big for the database is
refused by its field, a search says what to look for, and a search that
takes too long is a 503 saying so (every service running)."""

import pytest
from sqlalchemy import text

from tests.conftest import bearer
from tests.test_content_api import ARTICLE, EVENT

READ_TIMEOUT_MS = 300


@pytest.fixture
def config(config):
    """The stack's settings, with a read timeout that a locked table outlasts."""
    return {**config, "READ_TIMEOUT_MS": READ_TIMEOUT_MS}


def error(response):
    answer = response.json()
    return response.status_code, answer["error"], answer["details"]


@pytest.mark.parametrize("plural, item", [("articles", ARTICLE), ("events", EVENT)])
def test_a_body_over_100000_characters_is_a_422_naming_body(web_session, make_user, plural, item):
    _, token = make_user()
    path = f"/api/{plural}"
    too_long = web_session.post(path, json={**item, "body": "x" * 100_001}, headers=bearer(token))
    assert error(too_long)[:2] == (422, "VALIDATION_ERROR")
    assert set(error(too_long)[2]) == {"body"}
    longest = web_session.post(path, json={**item, "body": "x" * 100_000}, headers=bearer(token))
    assert longest.status_code == 201, longest.text


@pytest.mark.parametrize("plural", ["articles", "events"])
def test_a_query_of_only_exclusions_is_a_422_naming_q(stack, web_session, plural):
    for q in ("-bridge", "-a%20-b"):
        status, code, details = error(web_session.get(f"/api/{plural}?q={q}"))
        assert (status, code, list(details)) == (422, "VALIDATION_ERROR", ["q"]), q
    nothing = web_session.get(f"/api/{plural}?q=the")  # no word to look for: nothing found
    assert (nothing.status_code, nothing.json()) == (200, [])


def test_a_search_over_READ_TIMEOUT_MS_is_a_503_saying_so(  # noqa: N802
    web_session, make_user, db_session
):
    _, token = make_user()
    assert web_session.post("/api/articles", json=ARTICLE, headers=bearer(token)).ok
    blocker = db_session("articles")
    blocker.execute(text("LOCK TABLE articles IN ACCESS EXCLUSIVE MODE"))  # a slow search
    try:
        answer = web_session.get("/api/articles?q=bridge")
    finally:
        blocker.rollback()
    assert (answer.status_code, answer.json()["error"]) == (503, "SERVICE_UNAVAILABLE")
    assert answer.json()["message"] == "The search took too long; try again later."
    assert [found["title"] for found in web_session.get("/api/articles?q=bridge").json()] == [
        ARTICLE["title"]
    ]
