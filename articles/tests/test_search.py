"""Full-text search (``q``) of articles on the real database: ranking, word
forms, filters, pages, and queries that try to break it."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import text

from articles.models import Article
from articles.service import ArticlesService
from news.search import ONLY_EXCLUSIONS
from servicekit.errors import BadRequest, ServiceUnavailable, ValidationError
from tests.support import running_service


@pytest.fixture
def articles(config, container_factory):
    with running_service(container_factory, config, ArticlesService) as proxy:
        yield proxy


def store(db_session, *items):
    """Articles straight into the table, ``created_at`` one minute apart
    (oldest first), as COPY or an operator would: the trigger indexes them."""
    session = db_session("articles")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = []
    for n, (title, description, body, *tags) in enumerate(items):
        row = Article(
            id=uuid.uuid4(), author_uid="a", title=title, description=description, body=body,
            status=0, tags=list(tags), images_uid=[], likes=0,
            created_at=start + timedelta(minutes=n), updated_at=start,
        )  # fmt: skip
        session.add(row)
        ids.append(str(row.id))
    session.commit()
    return ids


def titles(page):
    return [item["title"] for item in page["items"]]


def test_title_weighs_most_and_newest_wins_among_equals(articles, db_session):
    store(
        db_session,
        ("Market day", "Stalls", "The bridge is closed for the market.", "town"),
        ("Bridge reopens", "On Monday", "Traffic again.", "traffic"),
        ("Weather", "A bridge of clouds", "Rain.", "weather"),
        ("Bridge works", "Again", "More traffic.", "traffic"),
    )
    page = articles.list(q="bridge")
    # Title (A) before description (B) before body (C); the newer of two titles first.
    assert titles(page) == ["Bridge works", "Bridge reopens", "Weather", "Market day"]
    assert "rank" not in page["items"][0] and "search_vector" not in page["items"][0]


def test_word_forms_phrases_or_and_minus(articles, db_session):
    store(
        db_session,
        ("Bridges of the river", "", "", "a"),
        ("Running club", "", "We ran and run every day", "b"),
        ("Old bridge", "", "Closed", "c"),
    )
    assert titles(articles.list(q="bridge")) == ["Old bridge", "Bridges of the river"]
    assert titles(articles.list(q="runs")) == ["Running club"]
    assert titles(articles.list(q='"old bridge"')) == ["Old bridge"]
    assert set(titles(articles.list(q="river or club"))) == {"Bridges of the river", "Running club"}
    assert titles(articles.list(q="bridge -closed")) == ["Bridges of the river"]


def test_search_combines_with_the_tag_and_pages_with_cursors(articles, db_session):
    store(db_session, *[(f"Fair {n}", "", "fair", "odd" if n % 2 else "even") for n in range(25)])
    assert len(articles.list(q="fair", tag="odd", limit=100)["items"]) == 12
    seen, cursor = [], None
    while True:
        page = articles.list(q="fair", limit=10, cursor=cursor)
        seen += titles(page)
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [f"Fair {n}" for n in reversed(range(25))]  # equal rank: newest first
    plain_cursor = articles.list(limit=1)["nextCursor"]
    with pytest.raises(BadRequest):  # a cursor of another list is no cursor here
        articles.list(q="fair", cursor=plain_cursor)


@pytest.mark.parametrize(
    "q",
    [
        "bridge & | ! ( ) : * < > \\ ' \" <-> &&",
        "-",
        '"',
        "or",
        "the",  # only a stop word: nothing to look for
        "x" * 200,
        "'; DROP TABLE articles; --",
        "bridge:*",
    ],
)
def test_any_query_text_is_safe(articles, db_session, q):
    store(db_session, ("Bridge", "", "", "t"))
    page = articles.list(q=q)
    assert isinstance(page["items"], list)
    assert articles.list()["items"]  # the table is still there


@pytest.mark.parametrize("q", ["", "x" * 201, "nul\x00byte"])
def test_a_query_out_of_bounds_is_refused(articles, q):
    with pytest.raises(BadRequest) as err:
        articles.list(q=q)
    assert "q" in err.value.details


def test_a_new_search_language_reindexes(config, container_factory, db_session):
    store(db_session, ("Bridges", "", "", "t"))
    simple = {**config, "SEARCH_LANGUAGE": "simple"}
    container_factory(ArticlesService, simple).start()
    with ServiceRpcProxy("articles", simple) as articles:
        assert articles.list(q="bridge")["items"] == []  # no word forms in "simple"
        assert titles(articles.list(q="bridges")) == ["Bridges"]
    language = db_session("articles").execute(text("SELECT language::text FROM search_settings"))
    assert language.scalar() == "simple"


@pytest.mark.parametrize(
    "q", ["-bridge", "-a -b", "-bridge -fair", "fair or -bridge", '-"old bridge"']
)
def test_a_query_of_only_exclusions_is_a_422_naming_q(articles, db_session, q):
    store(db_session, ("Fair", "", "", "t"))
    with pytest.raises(ValidationError) as err:
        articles.list(q=q)
    assert err.value.details == {"q": [ONLY_EXCLUSIONS]}
    assert titles(articles.list(q="fair -bridge")) == ["Fair"]  # an exclusion with a word is fine


@pytest.mark.parametrize("q", ["the", "-the", "&&", "-", "the or a"])
def test_a_query_with_no_word_to_look_for_finds_nothing(articles, db_session, q):
    store(db_session, ("The fair", "", "", "t"))
    assert articles.list(q=q) == {"items": [], "nextCursor": None}


@pytest.fixture
def articles_ranking_3(config, container_factory):
    """The service with ``SEARCH_MAX_MATCHES=3``."""
    with running_service(
        container_factory, {**config, "SEARCH_MAX_MATCHES": 3}, ArticlesService
    ) as proxy:
        yield proxy


def test_only_the_newest_search_max_matches_are_ranked(articles_ranking_3, db_session):
    store(
        db_session,
        ("Bridge", "Bridge", "bridge bridge", "t"),  # the best match, but the oldest
        ("Old news", "", "a bridge", "t"),
        ("Town", "The bridge", "", "t"),
        ("Market", "", "the bridge", "t"),
        ("Bridge works", "", "", "t"),
        ("Weather", "", "No match here.", "t"),  # the newest row, not a match
    )
    # The newest 3 matches, ranked: the title, the description, the body.
    assert titles(articles_ranking_3.list(q="bridge")) == ["Bridge works", "Town", "Market"]
    assert titles(articles_ranking_3.list(q="bridge", limit=1)) == ["Bridge works"]


def test_the_newest_matches_are_those_of_every_filter_and_page_alike(
    articles_ranking_3, db_session
):
    ids = store(
        db_session,
        ("Fair", "", "", "a"),  # a match of tag a, but a fourth
        ("Fair", "", "", "b"),
        ("Fair again", "", "fair", "a"),
        ("Fair", "", "", "b"),
        ("Fair", "", "", "a"),
        ("Fair", "", "", "a"),
        ("Fair", "", "", "b"),  # the newest match, not of tag a
    )
    seen, cursor = [], None
    while True:
        page = articles_ranking_3.list(q="fair", tag="a", limit=1, cursor=cursor)
        seen += [item["id"] for item in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    # Tag a's newest 3 matches, the best first, then the newer of equals.
    assert seen == [ids[2], ids[5], ids[4]]
    assert [item["id"] for item in articles_ranking_3.list(q="fair", tag="a")["items"]] == seen


def test_a_search_over_READ_TIMEOUT_MS_is_service_unavailable_saying_so(  # noqa: N802
    config, container_factory, db_session
):
    store(db_session, ("Bridge", "", "", "t"))
    with running_service(
        container_factory, {**config, "READ_TIMEOUT_MS": 200}, ArticlesService
    ) as articles:
        assert titles(articles.list(q="bridge")) == ["Bridge"]
        blocker = db_session("articles")
        blocker.execute(text("LOCK TABLE articles IN ACCESS EXCLUSIVE MODE"))  # a slow query
        try:
            with pytest.raises(ServiceUnavailable) as err:
                articles.list(q="bridge")
        finally:
            blocker.rollback()
        assert err.value.code == "SERVICE_UNAVAILABLE"
        assert str(err.value) == "The search took too long; try again later."
        assert titles(articles.list(q="bridge")) == ["Bridge"]
