"""The users service raises only the shared typed errors (servicekit.errors);
this module names the ones its callers should expect."""

from servicekit.errors import BadRequest, Conflict, NotFound, ValidationError

__all__ = ["BadRequest", "Conflict", "NotFound", "ValidationError"]
