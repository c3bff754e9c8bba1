"""The wire shape of a news item, and the query of a list."""

from marshmallow import fields, validate
from marshmallow.utils import get_value

from servicekit.pagination import PageQuerySchema
from servicekit.schemas import UTCDateTime, WireSchema, string_list

# PostgreSQL's ``integer``: a larger number is a 422, not a database error.
INT_MAX = 2**31 - 1


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


class NewsItemSchema(WireSchema):
    """A news item as the API shows it; the service's schema adds ``meta``."""

    id = fields.UUID(dump_only=True)
    authorUID = fields.String(
        required=True, validate=validate.Length(min=1, max=64), attribute="author_uid"
    )
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(required=True, validate=validate.Length(max=2000))
    body = fields.String(required=True)
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
