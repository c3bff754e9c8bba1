"""The live feed and the search, through the gateway with every service running."""

from gateway.tests.test_feed import Stream
from tests.conftest import bearer
from tests.test_content_api import ARTICLE, EVENT


def test_a_new_article_reaches_a_feed_client(gateway_url, web_session, make_user):
    _, token = make_user()
    stream = Stream(f"{gateway_url}/api/feed")
    try:
        created = web_session.post("/api/articles", json=ARTICLE, headers=bearer(token)).json()
        [(event, event_id, data)] = stream.changes(1)
    finally:
        stream.close()
    assert (event, data) == ("article_added", created)
    assert event_id  # the eventId of the outbox


def test_search_through_the_gateway_combines_with_the_date_range(web_session, make_user):
    _, token = make_user()
    for title, date in (
        ("Harbour concert", "2026-06-10"),
        ("Harbour market", "2026-07-10"),
        ("Town concert", "2026-06-20"),
    ):
        body = {**EVENT, "title": title, "eventDate": date}
        assert web_session.post("/api/events", json=body, headers=bearer(token)).status_code == 201

    june = web_session.get("/api/events?q=concerts&from=2026-06-01&to=2026-06-30").json()
    assert {event["title"] for event in june} == {"Harbour concert", "Town concert"}
    harbour = web_session.get("/api/events?q=harbour&limit=1")
    assert len(harbour.json()) == 1 and "next" in harbour.links
    bad = web_session.get("/api/events?q=" + "x" * 201)
    assert (bad.status_code, bad.json()["error"]) == (400, "BAD_REQUEST")
