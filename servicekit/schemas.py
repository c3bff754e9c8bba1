"""Marshmallow at the RPC boundary: load (validate) in, dump out."""

import re

from marshmallow import EXCLUDE, RAISE, Schema, fields, pre_load, validate
from marshmallow import ValidationError as SchemaError

from .db import iso
from .errors import BadRequest, ValidationError

# PostgreSQL cannot store NUL in text, nor UTF-8 a lone surrogate.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class WireSchema(Schema):
    """A resource as clients send and get it (camelCase).

    Loading refuses unknown fields ("Unknown field.", a 422 naming each) and
    text that cannot be stored, and ignores the server-owned fields (the
    dump-only ones: ``id``, the dates...) that clients may send back.
    """

    class Meta:
        unknown = RAISE

    @pre_load
    def _server_owned_ignored_and_text_storable(self, data, **kwargs):
        if not isinstance(data, dict):
            return data
        owned = {field.data_key or name for name, field in self.dump_fields.items()}
        owned -= {field.data_key or name for name, field in self.load_fields.items()}
        data = {key: value for key, value in data.items() if key not in owned}
        bad = [key for key, value in data.items() if _has_unstorable_text(value)]
        if bad:
            message = "Must not contain NUL characters or unpaired surrogates."
            raise SchemaError({key: [message] for key in bad})
        return data


class ReceivedEventSchema(Schema):
    """What a handler needs of an event another service published; fields it
    does not know are ignored (publishers may add some)."""

    class Meta:
        unknown = EXCLUDE


def _has_unstorable_text(value):
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_unstorable_text(v) for item in value.items() for v in item)
    if isinstance(value, list):
        return any(_has_unstorable_text(item) for item in value)
    return False


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
