"""The part of an ``article_added`` event the email needs, validated."""

from marshmallow import ValidationError as SchemaError
from marshmallow import fields, validate

from servicekit.idempotency import MalformedEvent
from servicekit.schemas import ReceivedEventSchema


class ArticleSchema(ReceivedEventSchema):
    id = fields.String(required=True, validate=validate.Length(min=1))
    title = fields.String(required=True)
    description = fields.String(required=True)


class ArticleAddedSchema(ReceivedEventSchema):
    eventId = fields.UUID(required=True)
    data = fields.Nested(ArticleSchema, required=True)


article_added_schema = ArticleAddedSchema()


def load_article_added(payload):
    """The event's ``eventId`` and ``data``, or :class:`MalformedEvent`.

    ``MalformedEvent`` is parked at once: retrying cannot fix a payload.
    """
    try:
        return article_added_schema.load(payload)
    except SchemaError as err:
        raise MalformedEvent(f"article_added is malformed: {err.messages}") from None
