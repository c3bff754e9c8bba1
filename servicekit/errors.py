"""Typed errors that cross the RPC boundary.

Each class is registered with nameko's ``deserialize_to_instance`` so a caller
gets the same class back (not a generic ``RemoteError``), with its ``code``, message and
``details``; the gateway maps ``code`` to an HTTP status in one place.
"""

from nameko.exceptions import deserialize_to_instance


class ServiceError(Exception):
    """Base of every expected error: one the client caused, or a known
    state of the service (:class:`ServiceUnavailable`); never a bug."""

    code = "BAD_REQUEST"

    def __init__(self, message, details=None):
        # Both travel as the exception's args, so they must be JSON values.
        details = details or {}
        super().__init__(message, details)
        self.message = message
        self.details = details

    def __str__(self):
        return self.message


_register = deserialize_to_instance


@_register
class BadRequest(ServiceError):
    code = "BAD_REQUEST"


@_register
class UnsupportedMediaType(ServiceError):
    code = "UNSUPPORTED_MEDIA_TYPE"


@_register
class ValidationError(ServiceError):
    code = "VALIDATION_ERROR"

    @classmethod
    def from_marshmallow(cls, err):
        messages = err.messages
        if not isinstance(messages, dict):
            messages = {"_schema": messages}
        return cls("The request has invalid fields.", messages)


@_register
class NotFound(ServiceError):
    code = "NOT_FOUND"


@_register
class Conflict(ServiceError):
    code = "CONFLICT"


@_register
class Forbidden(ServiceError):
    code = "FORBIDDEN"


@_register
class Unauthorized(ServiceError):
    code = "UNAUTHORIZED"


@_register
class InvalidCredentials(ServiceError):
    code = "INVALID_CREDENTIALS"


@_register
class TooManyRequests(ServiceError):
    code = "TOO_MANY_REQUESTS"

    @property
    def retry_after(self):
        return int(self.details.get("retryAfter", 1))


@_register
class PayloadTooLarge(ServiceError):
    """More than the database can take (PostgreSQL's program limits, class 54)."""

    code = "PAYLOAD_TOO_LARGE"


@_register
class ServiceUnavailable(ServiceError):
    """The service runs but cannot serve now: its database is away, or a
    query ran over its time limit. Try again later."""

    code = "SERVICE_UNAVAILABLE"
