"""The one place that turns any failure into the contract's error JSON.

Every non-2xx answer is ``{"error": CODE, "message": text, "details": {...}}``;
the code decides the status. Anything unexpected is a 500, logged with its
traceback, because a 500 is a bug.
"""

import json
import logging

from nameko.exceptions import RemoteError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from servicekit.errors import InvalidCredentials, ServiceError, TooManyRequests

log = logging.getLogger(__name__)

STATUS_BY_CODE = {
    "BAD_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "INVALID_CREDENTIALS": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "CONFLICT": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "VALIDATION_ERROR": 422,
    "TOO_MANY_REQUESTS": 429,
    "INTERNAL_ERROR": 500,
    "SERVICE_UNAVAILABLE": 503,
    "GATEWAY_TIMEOUT": 504,
}
CODE_BY_HTTP_STATUS = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
}
MESSAGES = {
    404: "No such route.",
    405: "This route does not accept that method.",
    413: "The request body is larger than 1 MiB.",
}


# SQLAlchemy's and psycopg2's names for a database that is down or away.
UNREACHABLE_STORE_ERRORS = {"OperationalError", "InterfaceError", "DisconnectionError"}


class ServiceUnavailable(ServiceError):
    code = "SERVICE_UNAVAILABLE"


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
    elif isinstance(exc, HTTPException) and exc.code in CODE_BY_HTTP_STATUS:
        code = CODE_BY_HTTP_STATUS[exc.code]
        message, details = MESSAGES.get(exc.code, exc.description), {}
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    else:
        log.error("unhandled error", exc_info=(type(exc), exc, exc.__traceback__))
        code, message, details = "INTERNAL_ERROR", "An unexpected error occurred.", {}
    payload = {"error": code, "message": message, "details": details}
    if isinstance(exc, InvalidCredentials):
        # Login failures keep the original API's shape, plus the error fields.
        payload = {"auth": False, "token": None, **payload}
    return json_response(payload, STATUS_BY_CODE[code], headers)
