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

    row_conversion = staticmethod(iso)  # see row_dumper

    def _serialize(self, value, attr, obj, **kwargs):
        return iso(value)


def row_dumper(schema):
    """A function that dumps a row (a mapping of attribute to value, as
    :class:`servicekit.db.PreparedRead` or ``.mappings()`` give) exactly as
    ``schema.dump`` does, at a fraction of its cost: the schema's fields read
    once into a plan of plain conversions. A field says how to convert its
    value with ``row_conversion`` (else its type must be one of
    ``_ROW_CONVERSIONS``), or how to read it from the whole row with
    ``row_value(row)``. A schema with anything else (dump hooks, nested
    schemas, other field types) gets ``schema.dump`` itself."""
    if schema._hooks.get("pre_dump") or schema._hooks.get("post_dump"):
        return schema.dump
    plan = []
    for name, field in schema.dump_fields.items():
        if hasattr(field, "row_value"):
            value_of = field.row_value
        else:
            convert = getattr(field, "row_conversion", None) or _row_conversion(field)
            if convert is None:
                return schema.dump
            value_of = _column_value(field.attribute or name, convert)
        plan.append((field.data_key or name, value_of))

    def dump(row):
        return {key: value_of(row) for key, value_of in plan}

    return dump


def _column_value(attribute, convert):
    return lambda row: convert(row[attribute])


def _row_conversion(field):
    if type(field) is fields.List and type(field.inner) is fields.String:
        return _string_list
    return _ROW_CONVERSIONS.get(type(field))


def _or_none(convert):
    return lambda value: None if value is None else convert(value)


def _string_list(value):
    return None if value is None else [None if each is None else str(each) for each in value]


_ROW_CONVERSIONS = {
    fields.String: _or_none(str),
    fields.UUID: _or_none(str),
    fields.Integer: _or_none(int),
}


def string_list(**kwargs):
    """``tags`` and ``imagesUID``: up to 100 strings of up to 200 characters."""
    return fields.List(
        fields.String(validate=validate.Length(max=200)),
        load_default=list,
        validate=validate.Length(max=100),
        **kwargs,
    )
