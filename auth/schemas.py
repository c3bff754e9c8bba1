from marshmallow import fields, validate

from servicekit.schemas import ReceivedEventSchema, WireSchema


class LoginSchema(WireSchema):
    emailAddress = fields.String(required=True, validate=validate.Length(min=1, max=320))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))


class LoginCallSchema(LoginSchema):
    """The ``login`` RPC's arguments: the body, and the client's address
    (from the gateway; a throttling key, so bounded)."""

    client = fields.String(load_default=None, validate=validate.Length(min=1, max=64))


class UserEventDataSchema(ReceivedEventSchema):
    """The part of a users event that auth keeps."""

    id = fields.UUID(required=True)
    emailAddress = fields.String(required=True)
    role = fields.String(required=True)
    updatedDate = fields.AwareDateTime(required=True)
    passwordHash = fields.String(load_default=None)
    # None: an event published before token generations existed.
    tokenGeneration = fields.Integer(
        load_default=None, strict=True, validate=validate.Range(min=0, max=2**31 - 1)
    )


class UserEventSchema(ReceivedEventSchema):
    eventId = fields.UUID(required=True)
    occurredAt = fields.AwareDateTime(required=True)
    data = fields.Nested(UserEventDataSchema, required=True)


login_call_schema = LoginCallSchema()
user_event_schema = UserEventSchema()
