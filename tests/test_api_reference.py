"""docs/reference.md says what the code says: it is written from the routes'
own descriptions (tools/api_reference.py), and must be current."""

from tools.api_reference import PATH, reference


def test_the_reference_in_docs_is_current():
    assert PATH.read_text() == reference(), "docs/reference.md is out of date: run `make reference`"


def test_every_route_is_in_the_reference():
    text = PATH.read_text()
    for route in (
        "GET /api/articles/{id}",
        "PUT /api/users/{id}",
        "POST /api/auth",
        "GET /api/feed",
    ):
        assert f"## `{route}`" in text
