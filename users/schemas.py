from marshmallow import fields, validate
from marshmallow.utils import get_value

from servicekit.schemas import UTCDateTime, WireSchema, string_list

NAME = validate.Length(min=1, max=100)
ROLES = ("regular", "admin")


class UserSchema(WireSchema):
    """A user as the API shows it to an admin; ``password`` is write-only."""

    id = fields.UUID(dump_only=True)
    firstName = fields.String(required=True, validate=NAME, attribute="first_name")
    lastName = fields.String(required=True, validate=NAME, attribute="last_name")
    emailAddress = fields.Email(
        required=True, validate=validate.Length(max=320), attribute="email_address"
    )
    description = fields.String(load_default="", validate=validate.Length(max=2000))
    role = fields.String(load_default="regular", validate=validate.OneOf(ROLES))
    tags = string_list()
    imagesUID = string_list(attribute="images_uid")
    meta = fields.Function(lambda user: {"likes": get_value(user, "likes")}, dump_only=True)
    createdDate = UTCDateTime(attribute="created_at", dump_only=True)
    updatedDate = UTCDateTime(attribute="updated_at", dump_only=True)
    # Bounded above so that nobody makes the server hash a megabyte.
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=8, max=256)
    )


user_schema = UserSchema()


def user_event_data(user, with_password_hash=True):
    """``data`` of a users event: the admin view, plus what only services
    see: ``tokenGeneration`` always, the hash when it is news. Neither is in
    any API answer."""
    data = user_schema.dump(user)
    data["tokenGeneration"] = user.token_generation
    if with_password_hash:
        data["passwordHash"] = user.password_hash
    return data
