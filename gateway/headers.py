"""What every answer of the gateway carries, and the request's few headers
the gateway reads itself, written once for both ways an answer leaves (the
read cache's fast path and the WSGI app).
"""

import re

from servicekit.logs import new_correlation_id

REQUEST_ID_HEADER = "X-Request-Id"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

# On every answer. A JSON API is never a page to render, frame or sniff.
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
]

READ_METHODS = ("GET", "HEAD")


def request_id(sent):
    """The request's own ``X-Request-Id`` when it is 1 to 64 of ``A-Z a-z
    0-9 . _ -`` (the whole value: it is echoed back), else a new one."""
    if sent and _SAFE_REQUEST_ID.fullmatch(sent):
        return sent
    return new_correlation_id()


def route_path(path):
    """The path as routes are matched: a trailing slash is accepted everywhere."""
    if len(path) > 1 and path.endswith("/"):
        return path.rstrip("/") or "/"
    return path


class Head:
    """What the gateway reads of a request before routing it, from either
    the fast path's own reading or a WSGI environ."""

    __slots__ = ("authorized", "if_none_match", "method", "origin", "path", "query", "request_id")

    # Positional: made for every request, on the fast path too.
    def __init__(self, method, path, query, authorization, if_none_match, request_id, origin):
        self.method = method
        self.path = route_path(path) if path.endswith("/") else path
        self.query = query
        self.authorized = authorization is not None
        self.if_none_match = if_none_match
        self.request_id = request_id
        self.origin = origin

    @classmethod
    def of(cls, environ):
        """The head of a WSGI request; its ``X-Request-Id`` made safe there too."""
        rid = environ["HTTP_X_REQUEST_ID"] = request_id(environ.get("HTTP_X_REQUEST_ID"))
        return cls(
            environ["REQUEST_METHOD"],
            environ.get("PATH_INFO") or "/",
            environ.get("QUERY_STRING", ""),
            environ.get("HTTP_AUTHORIZATION"),  # authorization
            environ.get("HTTP_IF_NONE_MATCH"),  # if_none_match
            rid,
            environ.get("HTTP_ORIGIN"),  # origin
        )
