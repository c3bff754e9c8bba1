from marshmallow import fields, validate

from servicekit.schemas import ReceivedEventSchema, WireSchema


class LoginSchema(WireSchema):
    emailAddress = fields.String(required=True, validate=validate.Length(min=1, max=320))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))


class UserEventDataSchema(ReceivedEventSchema):
    """The part of a users event that auth keeps."""

    id = fields.UUID(required=True)
    emailAddress = fields.String(required=True)
    role = fields.String(required=True)
    updatedDate = fields.AwareDateTime(required=True)
    passwordHash = fields.String(load_default=None)


class UserEventSchema(ReceivedEventSchema):
    eventId = fields.UUID(required=True)
    occurredAt = fields.AwareDateTime(required=True)
    data = fields.Nested(UserEventDataSchema, required=True)


login_schema = LoginSchema()
user_event_schema = UserEventSchema()
