from marshmallow import EXCLUDE, Schema, fields, validate

from servicekit.schemas import WireSchema


class LoginSchema(WireSchema):
    emailAddress = fields.String(required=True, validate=validate.Length(min=1, max=320))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))


class UserEventDataSchema(Schema):
    """The part of a users event that auth keeps."""

    class Meta:
        unknown = EXCLUDE

    id = fields.UUID(required=True)
    emailAddress = fields.String(required=True)
    role = fields.String(required=True)
    updatedDate = fields.AwareDateTime(required=True)
    passwordHash = fields.String(load_default=None)


class UserEventSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    eventId = fields.UUID(required=True)
    occurredAt = fields.AwareDateTime(required=True)
    data = fields.Nested(UserEventDataSchema, required=True)


login_schema = LoginSchema()
user_event_schema = UserEventSchema()
