"""The events service in a real container: what events add to a news item
(``eventDate``, ``meta.attending``, the date range filter, their event names).
The shared create/update/delete/page behaviour is tested in articles/tests."""

import uuid

import pytest

from events.service import EventsService
from servicekit.errors import BadRequest, ValidationError
from tests.support import crud_events, running_service

NEW_EVENT = {
    "authorUID": str(uuid.uuid4()),
    "title": "Summer fair",
    "description": "Stalls, music and food on the square.",
    "body": "From ten in the morning ...",
    "eventDate": "2026-06-15T10:00:00+02:00",
    "tags": ["fair"],
}


@pytest.fixture
def events(config, container_factory):
    with running_service(container_factory, config, EventsService) as proxy:
        yield proxy


def test_event_date_is_required_and_stored_in_utc(events):
    with pytest.raises(ValidationError) as err:
        events.create({**NEW_EVENT, "eventDate": None})
    assert set(err.value.details) == {"eventDate"}
    for bad in ("tomorrow", "2026-13-01", 20260615, "0001-01-01T00:00:00+01:00"):
        with pytest.raises(ValidationError):
            events.create({**NEW_EVENT, "eventDate": bad})

    created = events.create({**NEW_EVENT, "meta": {"attending": 40}})
    assert created["eventDate"] == "2026-06-15T08:00:00.000000Z"
    assert created["meta"] == {"attending": 0}

    updated = events.update(created["id"], {"eventDate": "2026-06-16", "meta": {"attending": 7}})
    assert updated["eventDate"] == "2026-06-16T00:00:00.000000Z"
    assert updated["meta"] == {"attending": 7}
    assert updated["title"] == created["title"]


def test_list_filters_by_date_range_and_tag(events):
    dates = {
        "may": "2026-05-31T23:59:59Z",
        "june-1": "2026-06-01T00:00:00Z",
        "june-30-evening": "2026-06-30T21:00:00Z",
        "july": "2026-07-01T00:00:00Z",
    }
    ids = {
        name: events.create({**NEW_EVENT, "eventDate": date, "tags": [name]})["id"]
        for name, date in dates.items()
    }

    def listed(**filters):
        return {e["id"] for e in events.list(**filters)["items"]}

    june = {ids["june-1"], ids["june-30-evening"]}
    # Both bounds included; a date alone as ``to`` means its whole day.
    assert listed(**{"from": "2026-06-01", "to": "2026-06-30"}) == june
    assert listed(**{"from": "2026-06-01T00:00:00Z", "to": "2026-06-30T21:00:00Z"}) == june
    assert listed(**{"from": "2026-06-01T00:00:01Z"}) == {ids["june-30-evening"], ids["july"]}
    assert listed(to="2026-05-31") == {ids["may"]}
    assert listed(tag="july", **{"from": "2026-06-01"}) == {ids["july"]}
    assert listed(tag="may", **{"from": "2026-06-01"}) == set()

    # Paging keeps the filter: newest (created) first.
    first = events.list(limit=1, **{"from": "2026-06-01"})
    rest = events.list(limit=5, cursor=first["nextCursor"], **{"from": "2026-06-01"})
    assert rest["nextCursor"] is None
    assert [e["id"] for e in first["items"] + rest["items"]] == [
        ids["july"],
        ids["june-30-evening"],
        ids["june-1"],
    ]

    for bad in ({"from": "June"}, {"to": "2026-02-30"}, {"from": "2026-07-01", "to": "2026-06-01"}):
        with pytest.raises(BadRequest) as err:
            events.list(**bad)
        assert set(err.value.details) <= {"from", "to"}


def test_every_change_is_an_event_on_the_bus(events, config):
    change = {"eventDate": "2026-06-16T09:00:00Z"}
    _, updated, _ = crud_events(events, config, "event", NEW_EVENT, change)
    assert updated["data"]["eventDate"] == "2026-06-16T09:00:00.000000Z"


def test_a_search_ranks_the_newest_matches_within_the_date_range(config, container_factory):
    two = {**config, "SEARCH_MAX_MATCHES": 2}
    with running_service(container_factory, two, EventsService) as events:
        made = [
            events.create({**NEW_EVENT, "title": title, "eventDate": date})["id"]
            for title, date in (
                ("Concert", "2026-06-10"),  # in June, but the third newest of June
                ("Concert concert", "2026-06-11"),
                ("Concert", "2026-06-12"),
                ("Concert", "2026-07-01"),  # the newest match, not in June
            )
        ]
        june = {"from": "2026-06-01", "to": "2026-06-30"}
        page = events.list(q="concert", **june)
        # June's newest two matches, the better first.
        assert [event["id"] for event in page["items"]] == [made[1], made[2]]
