"""The shared resource logic without a broker or database (nameko's
``worker_factory`` replaces every dependency with a mock)."""

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy.dialects import postgresql

from articles.models import Article, ArticleTag
from articles.service import ArticlesService, article_items
from servicekit.errors import BadRequest, ValidationError
from servicekit.request_keys import NO_KEY

NEW_ARTICLE = {"authorUID": "u1", "title": "T", "description": "D", "body": "B"}


def articles_service():
    service = worker_factory(ArticlesService)
    service.change.claim.return_value = NO_KEY  # a request without a key
    return service


def test_create_inserts_the_row_and_announces_it_in_one_commit():
    service = articles_service()
    service.create({**NEW_ARTICLE, "meta": {"likes": -5}, "createdDate": "1999"})

    (statement, values), _ = service.change.session.execute.call_args
    assert statement is article_items.insert  # INSERT ... RETURNING the row
    assert values["created_at"] == values["updated_at"]  # ours, not the client's "1999"
    assert "likes" not in values  # meta is ignored on create: the column default applies
    assert (values["author_uid"], values["title"]) == ("u1", "T")
    (event_type, _aggregate_id, _data), _ = service.change.announce.call_args
    assert event_type == "article_added"
    service.change.commit.assert_called_once_with()


def test_invalid_input_never_reaches_the_database():
    service = articles_service()
    with pytest.raises(ValidationError):
        service.create({**NEW_ARTICLE, "title": ""})
    with pytest.raises(BadRequest):
        service.list(limit="many")
    assert service.change.session.mock_calls == []
    service.change.announce.assert_not_called()
    service.change.commit.assert_not_called()


def test_tag_filter_pages_over_the_tag_index():
    _, plain_key, _ = article_items.list_query({})
    tagged, tagged_key, _ = article_items.list_query({"tag": "town"})

    assert plain_key is Article and tagged_key is ArticleTag
    sql = str(tagged.compile(dialect=postgresql.dialect()))
    assert "JOIN article_tags ON article_tags.id = articles.id" in sql
    assert "article_tags.tag = " in sql
