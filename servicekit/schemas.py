"""Marshmallow at the RPC boundary: load (validate) in, dump out."""

from marshmallow import EXCLUDE, Schema, fields, validate
from marshmallow import ValidationError as SchemaError

from .db import iso
from .errors import BadRequest, ValidationError


class WireSchema(Schema):
    """camelCase on the wire; unknown and server-owned fields are ignored."""

    class Meta:
        unknown = EXCLUDE


def load(schema, payload, *, partial=False):
    if not isinstance(payload, dict):
        raise BadRequest("The body must be a JSON object.")
    try:
        return schema.load(payload, partial=partial)
    except SchemaError as err:
        raise ValidationError.from_marshmallow(err) from None


class UTCDateTime(fields.Field):
    """Dumps an aware datetime as ISO 8601 UTC with ``Z``."""

    def _serialize(self, value, attr, obj, **kwargs):
        return iso(value)


def string_list(**kwargs):
    """``tags`` and ``imagesUID``: up to 100 strings of up to 200 characters."""
    return fields.List(
        fields.String(validate=validate.Length(max=200)),
        load_default=list,
        validate=validate.Length(max=100),
        **kwargs,
    )
