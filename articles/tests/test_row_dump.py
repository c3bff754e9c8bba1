"""The wire schemas of news items dump rows by plan, as marshmallow would."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from news.schemas import ArticleSchema, EventSchema
from servicekit.schemas import row_dumper


def row(**extra):
    return {
        "id": uuid.uuid4(),
        "author_uid": "author-1",
        "title": "A title",
        "description": "",
        "body": "Text ✓",
        "status": 0,
        "tags": ["local", "news"],
        "images_uid": [],
        "created_at": datetime(2026, 12, 6, 8, 0, tzinfo=UTC),
        "updated_at": datetime(2026, 12, 6, 9, 0, 0, 1, tzinfo=timezone(timedelta(hours=-5))),
        **extra,
    }


@pytest.mark.parametrize(
    ("schema", "item"),
    [
        (ArticleSchema(), row(likes=3)),
        (ArticleSchema(), row(likes=0, tags=None, images_uid=None)),
        (EventSchema(), row(attending=7, event_date=datetime(2027, 1, 1, tzinfo=UTC))),
    ],
)
def test_a_news_item_row_dumps_as_its_schema_dumps_it(schema, item):
    dump = row_dumper(schema)
    assert dump is not schema.dump  # every field of these schemas is planned
    assert dump(item) == schema.dump(item)
