"""The articles service in a real container, on the real broker and database.

Articles are the fullest user of the shared news item code
(news.items): create, update, delete, pages and events are tested
here once; events/tests covers what only events have.
"""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from articles.models import Article, ArticleTag, OutboxMessage
from articles.service import ArticlesService
from servicekit.errors import BadRequest, Forbidden, NotFound, ValidationError
from tests.support import crud_events, running_service

AUTHOR = str(uuid.uuid4())
NEW_ARTICLE = {
    "authorUID": AUTHOR,
    "title": "Bridge reopens",
    "description": "The old bridge reopens on Monday.",
    "body": "After two years of works ...",
    "tags": ["traffic", "town"],
}


@pytest.fixture
def articles(config, container_factory):
    with running_service(container_factory, config, ArticlesService) as proxy:
        yield proxy


def test_create_applies_defaults_and_ignores_server_fields(articles, db_session):
    server_owned = {
        "id": "x",
        "createdDate": "2000-01-01T00:00:00Z",
        "updatedDate": "2000-01-01T00:00:00Z",
        "meta": {"likes": 99},
    }
    created = articles.create({**NEW_ARTICLE, "tags": [], **server_owned})

    uuid.UUID(created["id"])
    assert created["status"] == 0
    assert created["tags"] == [] and created["imagesUID"] == []
    assert created["meta"] == {"likes": 0}
    assert created["createdDate"] == created["updatedDate"] > "2020"
    assert articles.get(created["id"]) == created
    outbox = db_session("articles").scalars(select(OutboxMessage)).all()
    assert [(row.event_type, row.payload["data"]) for row in outbox] == [("article_added", created)]


def test_validation_errors_name_each_field(articles):
    with pytest.raises(ValidationError) as missing:
        articles.create({})
    assert set(missing.value.details) == {"authorUID", "title", "description", "body"}

    wrong = {"title": "", "status": "1", "tags": "town", "imagesUID": [1], "description": 5}
    with pytest.raises(ValidationError) as err:
        articles.create({**NEW_ARTICLE, **wrong})
    assert set(err.value.details) == set(wrong)

    with pytest.raises(ValidationError) as err:
        articles.create({**NEW_ARTICLE, "title": "x" * 201, "status": 2**31})
    assert set(err.value.details) == {"title", "status"}

    with pytest.raises(BadRequest):
        articles.create(["not", "an", "object"])


def test_a_body_over_100000_characters_is_a_422_naming_body(articles):
    with pytest.raises(ValidationError) as err:
        articles.create({**NEW_ARTICLE, "body": "x" * 100_001})
    assert set(err.value.details) == {"body"}
    created = articles.create({**NEW_ARTICLE, "body": "x" * 100_000})
    with pytest.raises(ValidationError) as err:
        articles.update(created["id"], {"body": "y" * 100_001})
    assert set(err.value.details) == {"body"}


def test_update_changes_only_sent_fields(articles):
    created = articles.create(NEW_ARTICLE)
    updated = articles.update(created["id"], {"title": "Bridge reopened", "tags": ["bridge"]})

    assert updated["title"] == "Bridge reopened"
    assert {k: v for k, v in updated.items() if k not in ("title", "tags", "updatedDate")} == {
        k: v for k, v in created.items() if k not in ("title", "tags", "updatedDate")
    }
    assert updated["updatedDate"] > created["updatedDate"]
    # The tag index follows the change.
    assert [a["id"] for a in articles.list(tag="bridge")["items"]] == [created["id"]]
    assert articles.list(tag="traffic")["items"] == []

    # meta is ignored on create, but an update may set it, within its rules.
    assert articles.update(created["id"], {"meta": {"likes": 3}})["meta"] == {"likes": 3}
    with pytest.raises(ValidationError) as err:
        articles.update(created["id"], {"meta": {"likes": -1}, "body": None})
    assert set(err.value.details) == {"meta", "body"}
    assert articles.get(created["id"])["meta"] == {"likes": 3}


def test_expected_author_guards_update_and_delete(articles):
    created = articles.create(NEW_ARTICLE)
    someone_else = str(uuid.uuid4())

    with pytest.raises(Forbidden):
        articles.update(created["id"], {"title": "Mine now"}, expected_author=someone_else)
    with pytest.raises(Forbidden):
        articles.delete(created["id"], expected_author=someone_else)
    assert articles.get(created["id"]) == created

    assert articles.update(created["id"], {"title": "Fixed"}, expected_author=AUTHOR)["title"]
    assert articles.delete(created["id"], expected_author=AUTHOR)["title"] == "Fixed"


def test_unknown_and_malformed_ids_are_not_found(articles):
    for bad_id in (str(uuid.uuid4()), "not-an-id", "", None):
        with pytest.raises(NotFound):
            articles.get(bad_id)
        with pytest.raises(NotFound):
            articles.update(bad_id, {"title": "x"})
        with pytest.raises(NotFound):
            articles.delete(bad_id)


def test_every_change_is_an_event_on_the_bus(articles, config, db_session):
    added, updated, deleted = crud_events(articles, config, "article", NEW_ARTICLE, {"status": 1})

    assert updated["data"]["status"] == 1
    assert deleted["data"] == updated["data"]
    with pytest.raises(NotFound):
        articles.get(added["data"]["id"])
    # Its tag rows went with it.
    assert db_session("articles").scalars(select(ArticleTag)).all() == []


def test_list_edge_cases(articles):
    assert articles.list() == {"items": [], "nextCursor": None}

    ids = [articles.create({**NEW_ARTICLE, "title": f"A{i}"})["id"] for i in range(3)]
    newest_first = list(reversed(ids))
    exactly_one_page = articles.list(limit=3)
    assert [a["id"] for a in exactly_one_page["items"]] == newest_first
    assert exactly_one_page["nextCursor"] is None

    first = articles.list(limit=1)
    # The row a cursor points at may go; the cursor still marks the place.
    articles.delete(newest_first[0])
    rest = articles.list(limit=5, cursor=first["nextCursor"])
    assert [a["id"] for a in rest["items"]] == newest_first[1:]

    cursor = articles.list(limit=1)["nextCursor"]
    tampered = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    for bad in ({"cursor": tampered}, {"cursor": "x"}, {"limit": 0}, {"limit": 101}):
        with pytest.raises(BadRequest) as err:
            articles.list(**bad)
        assert set(err.value.details) == set(bad)
    with pytest.raises(BadRequest) as err:
        articles.list(tag="", colour="red")
    assert set(err.value.details) == {"tag", "colour"}


def _insert_articles(session, count, tag_every):
    """``count`` rows straight into the table; three share each ``created_at``
    so that the ``id`` tie-break is exercised too."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(count):
        created_at = start + timedelta(seconds=i // 3)
        rows.append(
            {
                "id": uuid.uuid4(),
                "author_uid": AUTHOR,
                "title": f"Article {i}",
                "description": "",
                "body": "",
                "tags": ["every"] + (["some"] if i % tag_every == 0 else []),
                "created_at": created_at,
                "updated_at": created_at,
            }
        )
    session.execute(insert(Article), rows)
    session.commit()
    return sorted(rows, key=lambda row: (row["created_at"], row["id"]), reverse=True)


def _page_through(articles, limit, **filters):
    seen, pages, cursor = [], 0, None
    while True:
        page = articles.list(limit=limit, cursor=cursor, **filters)
        seen += [a["id"] for a in page["items"]]
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            return seen, pages


def test_paging_through_1000_articles(articles, db_session):
    rows = _insert_articles(db_session("articles"), 1000, tag_every=7)
    expected = [str(row["id"]) for row in rows]

    assert _page_through(articles, 20) == (expected, 50)
    # The tag index gives the same order (an untagged list and every=tagged agree).
    assert _page_through(articles, 20, tag="every") == (expected, 50)
    some = [str(row["id"]) for row in rows if "some" in row["tags"]]
    assert len(some) == 143
    assert _page_through(articles, 20, tag="some") == (some, 8)
