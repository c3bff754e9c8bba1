"""Articles and events through the gateway: the five routes of
each, their access rules, errors and pages."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from servicekit.tokens import issue_token
from tests.conftest import bearer

ARTICLE = {"title": "Bridge reopens", "description": "On Monday.", "body": "After two years ..."}
EVENT = {**ARTICLE, "title": "Summer fair", "eventDate": "2026-06-15T10:00:00Z"}
RESOURCES = {"articles": (ARTICLE, "likes"), "events": (EVENT, "attending")}


@pytest.mark.parametrize("plural", RESOURCES)
def test_create_read_update_delete(plural, web_session, make_user):
    body, counter = RESOURCES[plural]
    user, token = make_user()
    path = f"/api/{plural}"
    server_owned = {"id": "mine", "createdDate": "2000-01-01T00:00:00Z", "meta": {counter: 9}}

    response = web_session.post(path, json={**body, **server_owned}, headers=bearer(token))
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["Location"] == f"{path}/{created['id']}"
    assert created["authorUID"] == user["id"]
    assert created["meta"] == {counter: 0}
    assert created["tags"] == [] and created["status"] == 0

    # Reads are public; a trailing slash is accepted.
    assert web_session.get(f"{path}/{created['id']}/").json() == created
    assert web_session.get(f"{path}/").json() == [created]

    response = web_session.put(
        f"{path}/{created['id']}", json={"title": "Changed"}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["title"] == "Changed" and updated["body"] == created["body"]
    assert updated["updatedDate"] > created["updatedDate"] == created["createdDate"]

    response = web_session.delete(f"{path}/{created['id']}", headers=bearer(token))
    assert (response.status_code, response.json()) == (200, updated)
    response = web_session.get(f"{path}/{created['id']}")
    assert (response.status_code, response.json()["error"]) == (404, "NOT_FOUND")


def test_access_rules(stack, web_session, admin_token, make_user):
    author, author_token = make_user()
    other, other_token = make_user()
    article = web_session.post("/api/articles", json=ARTICLE, headers=bearer(author_token)).json()
    event = web_session.post("/api/events", json=EVENT, headers=bearer(author_token)).json()
    article_path = f"/api/articles/{article['id']}"

    expired = issue_token(
        stack["JWT_SECRET"],
        user_id=author["id"],
        email="a@example.com",
        role="regular",
        ttl_seconds=60,
        now=time.time() - 3600,
    )
    foreign = issue_token(
        "another-secret-" * 4, user_id=author["id"], email="a", role="admin", ttl_seconds=60
    )
    for headers in ({}, {"Authorization": author_token}, bearer(expired), bearer(foreign)):
        for method, path in (("post", "/api/articles"), ("put", article_path)):
            response = web_session.request(method, path, json=ARTICLE, headers=headers)
            assert (response.status_code, response.json()["error"]) == (401, "UNAUTHORIZED")
        assert web_session.delete(article_path, headers=headers).status_code == 401
    assert "Bearer" in web_session.post("/api/articles", json=ARTICLE).json()["message"]

    # Someone else's item: 403 for a regular user, for both resources.
    for path in (article_path, f"/api/events/{event['id']}"):
        headers = bearer(other_token)
        assert web_session.put(path, json={"title": "Mine"}, headers=headers).status_code == 403
        assert web_session.delete(path, headers=headers).status_code == 403
    assert web_session.get(article_path, headers=bearer("garbage")).json() == article

    # Only an admin may name another author.
    someone_else = {**ARTICLE, "authorUID": author["id"]}
    response = web_session.post("/api/articles", json=someone_else, headers=bearer(other_token))
    assert (response.status_code, response.json()["details"]) == (
        403,
        {"authorUID": ["Must be your own user id."]},
    )
    response = web_session.put(
        article_path, json={"authorUID": other["id"]}, headers=bearer(author_token)
    )
    assert response.status_code == 403
    response = web_session.post("/api/articles", json=someone_else, headers=bearer(admin_token))
    assert (response.status_code, response.json()["authorUID"]) == (201, author["id"])

    # An admin may change and delete anyone's.
    admin = bearer(admin_token)
    response = web_session.put(article_path, json={"meta": {"likes": 2}}, headers=admin)
    assert (response.status_code, response.json()["meta"]) == (200, {"likes": 2})
    assert web_session.delete(article_path, headers=admin).status_code == 200


def test_errors(web_session, make_user):
    _, token = make_user()
    auth = bearer(token)
    article = web_session.post("/api/articles", json=ARTICLE, headers=auth).json()

    def error(response):
        assert response.headers["Content-Type"].startswith("application/json")
        return response.status_code, response.json()["error"]

    auth_json = {**auth, "Content-Type": "application/json"}
    for data in ("{not json", "[1, 2]", "", '"text"'):
        response = web_session.post("/api/articles", data=data, headers=auth_json)
        assert error(response) == (400, "BAD_REQUEST"), data
    assert error(web_session.post("/api/articles", data="{}", headers=auth)) == (
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    assert error(
        web_session.put(f"/api/articles/{article['id']}", data="{", headers=auth_json)
    ) == (
        400,
        "BAD_REQUEST",
    )

    response = web_session.post("/api/events", json={}, headers=auth)
    assert error(response) == (422, "VALIDATION_ERROR")
    assert set(response.json()["details"]) == {"title", "description", "body", "eventDate"}
    wrong_types = {
        "title": 1,
        "status": "high",
        "tags": "x",
        "imagesUID": None,
        "eventDate": "soon",
    }
    response = web_session.post("/api/events", json={**EVENT, **wrong_types}, headers=auth)
    assert error(response) == (422, "VALIDATION_ERROR")
    assert set(response.json()["details"]) == set(wrong_types)
    response = web_session.put(
        f"/api/articles/{article['id']}", json={"title": "", "meta": {"likes": -1}}, headers=auth
    )
    assert error(response) == (422, "VALIDATION_ERROR")
    assert set(response.json()["details"]) == {"title", "meta"}

    for item_id in ("00000000-0000-0000-0000-000000000000", "not-an-id", "%20"):
        path = f"/api/articles/{item_id}"
        assert error(web_session.get(path)) == (404, "NOT_FOUND")
        assert error(web_session.put(path, json={"title": "x"}, headers=auth)) == (404, "NOT_FOUND")
        assert error(web_session.delete(path, headers=auth)) == (404, "NOT_FOUND")

    bad_queries = (
        "/api/articles?limit=0",
        "/api/articles?limit=ten",
        "/api/articles?cursor=forged",
        "/api/articles?tag=a&tag=b",
        "/api/events?from=yesterday",
        "/api/events?from=2026-07-01&to=2026-06-01",
    )
    for path in bad_queries:
        assert error(web_session.get(path)) == (400, "BAD_REQUEST"), path
    assert error(web_session.patch(f"/api/articles/{article['id']}", json={})) == (
        405,
        "METHOD_NOT_ALLOWED",
    )
    big = {**ARTICLE, "body": "x" * (1024 * 1024)}
    assert error(web_session.post("/api/articles", json=big, headers=auth)) == (
        413,
        "PAYLOAD_TOO_LARGE",
    )


def _follow(web_session, url):
    """Every page from ``url`` on, by the ``Link: rel="next"`` headers."""
    pages = []
    while url:
        response = web_session.get(url)
        assert response.status_code == 200, response.text
        pages.append([item["id"] for item in response.json()])
        url = response.links.get("next", {}).get("url")
        if url:
            parts = urlsplit(url)
            url = f"{parts.path}?{parts.query}"
    return pages


def test_pages_follow_the_link_header(web_session, make_user):
    _, token = make_user()
    ids = []
    for i in range(45):
        body = {**ARTICLE, "title": f"Article {i}", "tags": ["odd"] if i % 2 else []}
        ids.append(web_session.post("/api/articles", json=body, headers=bearer(token)).json()["id"])
    newest_first = list(reversed(ids))

    pages = _follow(web_session, "/api/articles?limit=20")
    assert [len(page) for page in pages] == [20, 20, 5]
    assert [item for page in pages for item in page] == newest_first

    pages = _follow(web_session, "/api/articles?limit=10&tag=odd")
    assert [item for page in pages for item in page] == newest_first[1::2]
    assert len(pages) == 3
    link = web_session.get("/api/articles?limit=10&tag=odd").links["next"]["url"]
    assert parse_qs(urlsplit(link).query).keys() == {"limit", "tag", "cursor"}

    dates = ["2026-06-01", "2026-06-10", "2026-07-01"]
    events = [
        web_session.post("/api/events", json={**EVENT, "eventDate": d}, headers=bearer(token))
        for d in dates
    ]
    june = [e.json()["id"] for e in reversed(events[:2])]
    assert _follow(web_session, "/api/events?limit=1&from=2026-06-01&to=2026-06-30") == [
        [june[0]],
        [june[1]],
    ]
    assert web_session.get("/api/openapi.json").json()["paths"]["/api/events"]["get"]
