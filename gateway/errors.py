"""The one place that turns any failure into the contract's error JSON.

Every non-2xx answer is ``{"error": CODE, "message": text, "details": {...}}``;
the code decides the status. Anything unexpected is a 500, logged with its
traceback, because a 500 is a bug.
"""

import json
import logging
from typing import NamedTuple

import amqp.exceptions
import kombu.exceptions
from nameko.exceptions import RemoteError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from servicekit.errors import InvalidCredentials, ServiceError, TooManyRequests
from servicekit.rpc import BROKER_AWAY

log = logging.getLogger(__name__)


class ErrorKind(NamedTuple):
    status: int
    component: str  # its answer's name in the OpenAPI document
    when: str  # what causes it, for the API reference


# Every error code of the API, its status, and when it is answered: the one
# table the answers and the OpenAPI document are made from.
ERRORS = {
    "BAD_REQUEST": ErrorKind(
        400,
        "BadRequest",
        "Malformed JSON, a body that is not an object, JSON nested deeper than 32 levels, "
        "a NUL character or an unpaired surrogate anywhere in the body or the query, a bad "
        "query parameter or cursor, a malformed `Idempotency-Key`.",
    ),
    "UNAUTHORIZED": ErrorKind(
        401,
        "Unauthorized",
        "No token, a malformed `Authorization` header, a forged, expired or revoked token "
        "(of a deleted user, or issued before the user's latest password or role change).",
    ),
    "INVALID_CREDENTIALS": ErrorKind(
        401, "LoginFailure", "A wrong email address or password (`POST /api/auth` only)."
    ),
    "FORBIDDEN": ErrorKind(403, "Forbidden", "A valid token without the right."),
    "NOT_FOUND": ErrorKind(404, "NotFound", "An unknown or malformed id, an unknown route."),
    "REQUEST_TIMEOUT": ErrorKind(
        408,
        "RequestTimeout",
        "A request's head did not arrive within 10 s of its first byte, or its body within "
        "30 s of its head (any route); the connection is closed.",
    ),
    "METHOD_NOT_ALLOWED": ErrorKind(
        405,
        "MethodNotAllowed",
        "A method that the route does not serve (any route); the `Allow` header lists those "
        "it does.",
    ),
    "CONFLICT": ErrorKind(
        409,
        "Conflict",
        "A duplicate email address; the last admin losing its role or being deleted; a request "
        "with the same `Idempotency-Key` still running.",
    ),
    "PAYLOAD_TOO_LARGE": ErrorKind(
        413,
        "PayloadTooLarge",
        "A body over 1 MiB (any route), or a value over a limit of the database itself.",
    ),
    "URI_TOO_LONG": ErrorKind(414, "UriTooLong", "A request line over 8 KiB (any route)."),
    "UNSUPPORTED_MEDIA_TYPE": ErrorKind(
        415,
        "UnsupportedMediaType",
        "The body is not sent as `application/json` (or another `*/*+json` type).",
    ),
    "VALIDATION_ERROR": ErrorKind(
        422,
        "ValidationError",
        "A field breaks a rule or is unknown (`details` maps each field to its messages); "
        "the Idempotency-Key used before with another request; a `q` of only exclusions.",
    ),
    "TOO_MANY_REQUESTS": ErrorKind(
        429,
        "TooManyRequests",
        "Too many failed logins (for one account from one address, from one address, or for "
        "one account from any); retry after `Retry-After` seconds.",
    ),
    "HEADERS_TOO_LARGE": ErrorKind(
        431, "HeadersTooLarge", "Request headers over 64 KiB in all, or over 100 (any route)."
    ),
    "INTERNAL_ERROR": ErrorKind(500, "InternalError", "A bug: logged with its traceback."),
    "SERVICE_UNAVAILABLE": ErrorKind(
        503,
        "ServiceUnavailable",
        "A service that the request needs is not running, or cannot reach its database, or a "
        "read ran over its time limit; the message broker cannot be reached, or the connection "
        "to it dropped while the request waited; the gateway does not know the revoked tokens yet (a "
        "route that needs a token); the gateway has all the connections it takes. With "
        "`Retry-After`.",
    ),
    "GATEWAY_TIMEOUT": ErrorKind(
        504, "GatewayTimeout", "A service did not answer within the deadline."
    ),
}
STATUS_BY_CODE = {code: kind.status for code, kind in ERRORS.items()}
# What a 503 asks the client to wait (with Retry-After) before trying again.
RETRY_UNAVAILABLE_SECONDS = 1
# The error answer of each status (the first code of a status: 401 is UNAUTHORIZED).
CODE_BY_STATUS = {}
for _code, _kind in ERRORS.items():
    CODE_BY_STATUS.setdefault(_kind.status, _code)
MESSAGES = {
    404: "No such route.",
    405: "This route does not accept that method.",
    413: "The request body is larger than 1 MiB.",
}


# SQLAlchemy's and psycopg2's names for a database that is down or away.
UNREACHABLE_STORE_ERRORS = {"OperationalError", "InterfaceError", "DisconnectionError"}
# kombu's, py-amqp's and the socket's words for a broker out of reach,
# wherever one surfaces (the RPC caller says it as a ServiceUnavailable).
UNREACHABLE_BROKER_ERRORS = (
    kombu.exceptions.OperationalError,
    amqp.exceptions.ConnectionError,
    ConnectionError,
)


class GatewayTimeout(ServiceError):
    code = "GATEWAY_TIMEOUT"


def json_response(payload, status=200, headers=None):
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return Response(
        body, status=status, headers=headers, content_type="application/json; charset=utf-8"
    )


def error_response(exc):
    headers = {}
    if isinstance(exc, ServiceError):
        code, message, details = exc.code, exc.message, exc.details
        if isinstance(exc, TooManyRequests):
            headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, RemoteError) and exc.exc_type in UNREACHABLE_STORE_ERRORS:
        # The service runs but cannot reach its database: unavailable, not a bug.
        log.warning("a service cannot reach its database: %s", exc)
        code, details = "SERVICE_UNAVAILABLE", {}
        message = "A service cannot reach its database; try again later."
    elif isinstance(exc, UNREACHABLE_BROKER_ERRORS):
        log.warning("the message broker cannot be reached: %s: %s", type(exc).__name__, exc)
        code, details = "SERVICE_UNAVAILABLE", {}
        message = BROKER_AWAY
    elif isinstance(exc, HTTPException) and exc.code in (400, 404, 405, 413):
        code = CODE_BY_STATUS[exc.code]
        message, details = MESSAGES.get(exc.code, exc.description), {}
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    else:
        log.error("unhandled error", exc_info=(type(exc), exc, exc.__traceback__))
        code, message, details = "INTERNAL_ERROR", "An unexpected error occurred.", {}
    if code == "SERVICE_UNAVAILABLE":
        headers.setdefault("Retry-After", str(RETRY_UNAVAILABLE_SECONDS))
    payload = {"error": code, "message": message, "details": details}
    if isinstance(exc, InvalidCredentials):
        # Login failures keep the original API's shape, plus the error fields.
        payload = {"auth": False, "token": None, **payload}
    return json_response(payload, STATUS_BY_CODE[code], headers)
