import re
from datetime import UTC, timedelta

from marshmallow import ValidationError, fields, post_load

from news.schemas import MetaCounters, NewsItemSchema, NewsListQuerySchema
from servicekit.db import iso

from .models import Event

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


def event_date_range(query, params):
    """``from``/``to`` of a list, on ``eventDate`` (news.items' ``filters``)."""
    if params.get("date_from") is not None:
        query = query.where(Event.event_date >= params["date_from"])
    if params.get("date_to") is not None:
        query = query.where(Event.event_date <= params["date_to"])
    return query
