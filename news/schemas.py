"""The wire shape of news items (articles, events) and of their lists.

The services load and dump with these; the gateway reads them too (the
OpenAPI document, the live feed's public fields) without loading any model.
"""

import re
from datetime import UTC, timedelta

from marshmallow import ValidationError, fields, post_load, validate
from marshmallow.utils import get_value

from servicekit.db import iso
from servicekit.pagination import PageQuerySchema
from servicekit.schemas import UTCDateTime, WireSchema, string_list

# PostgreSQL's ``integer``: a larger number is a 422, not a database error.
INT_MAX = 2**31 - 1
# ``body``: ten times a long article, and well below what the search index of
# one item can hold (a ``tsvector`` holds at most 1 MB of words; 100,000
# characters made at most 0.6 MB of them, as distinct hyphenated words of
# 4-byte letters), so no valid item is too large for the database.
BODY_MAX_LENGTH = 100_000


class MetaCounters(fields.Nested):
    """``meta``: ``{"likes": 3}``, integers >= 0; ignored on create, settable
    on update. Dumped from the counter columns themselves, so a model and a
    row mapping dump alike."""

    def __init__(self, *counters):
        counter = fields.Integer(strict=True, validate=validate.Range(min=0, max=INT_MAX))
        super().__init__(WireSchema.from_dict({name: counter for name in counters}))
        self.counters = counters

    def serialize(self, attr, obj, accessor=None, **kwargs):
        return {name: get_value(obj, name) for name in self.counters}

    def row_value(self, row):  # servicekit.schemas.row_dumper
        return {name: row[name] for name in self.counters}


class NewsItemSchema(WireSchema):
    """A news item as the API shows it; the service's schema adds ``meta``."""

    id = fields.UUID(dump_only=True)
    authorUID = fields.String(
        required=True, validate=validate.Length(min=1, max=64), attribute="author_uid"
    )
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(required=True, validate=validate.Length(max=2000))
    body = fields.String(
        required=True,
        validate=validate.Length(max=BODY_MAX_LENGTH),
        metadata={"description": f"The text, at most {BODY_MAX_LENGTH:,} characters."},
    )
    status = fields.Integer(
        strict=True, load_default=0, validate=validate.Range(min=-INT_MAX - 1, max=INT_MAX)
    )
    tags = string_list()
    imagesUID = string_list(attribute="images_uid")
    createdDate = UTCDateTime(attribute="created_at", dump_only=True)
    updatedDate = UTCDateTime(attribute="updated_at", dump_only=True)


class NewsListQuerySchema(PageQuerySchema):
    tag = fields.String(validate=validate.Length(min=1, max=200))
    # Full-text search (news.search): best match first, newest among equals.
    q = fields.String(validate=validate.Length(min=1, max=200))


class ArticleSchema(NewsItemSchema):
    """An article as the API shows it (to everyone: nothing in it is private)."""

    meta = MetaCounters("likes")


_DATE_ONLY = re.compile(r"\d{4}-?\d{2}-?\d{2}")


class UTCDate(fields.AwareDateTime):
    """ISO 8601 in (no offset means UTC), ISO 8601 UTC with ``Z`` out."""

    def __init__(self, **kwargs):
        super().__init__(default_timezone=UTC, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
            raise self.make_error("invalid", input=value, obj_type=self.OBJ_TYPE) from None

    def _serialize(self, value, attr, obj, **kwargs):
        return iso(value)

    row_conversion = staticmethod(iso)  # servicekit.schemas.row_dumper


class EventSchema(NewsItemSchema):
    eventDate = UTCDate(required=True, attribute="event_date")
    meta = MetaCounters("attending")


class EventListQuerySchema(NewsListQuerySchema):
    """``from`` and ``to`` bound ``eventDate``, both included; a date without
    a time means the whole day (``to=2026-06-30`` includes that evening)."""

    date_from = UTCDate(data_key="from")
    date_to = UTCDate(data_key="to")

    @post_load(pass_original=True)
    def _date_range(self, data, original, **kwargs):
        raw_to = original.get("to")
        if isinstance(raw_to, str) and _DATE_ONLY.fullmatch(raw_to.strip()):
            data["date_to"] += timedelta(days=1, microseconds=-1)
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise ValidationError(["'from' is after 'to'."], "from")
        return data
