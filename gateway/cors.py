"""Cross-origin requests from browsers, for the origins in ``CORS_ORIGINS``.

Off by default (no header is sent, browsers keep pages of other origins
out). ``CORS_ORIGINS`` is a comma-separated list of origins
(``https://news.example``), or ``*`` for any. For an allowed origin, answers
carry ``Access-Control-Allow-Origin`` (and the headers a script may read),
and a preflight ``OPTIONS`` is answered 204 with the methods and request
headers the API takes.
"""

ALLOWED_METHODS = "GET, HEAD, POST, PUT, DELETE"
ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key, If-None-Match, X-Request-Id"
EXPOSED_HEADERS = "ETag, Link, Location, Retry-After, X-Cache, X-Request-Id"
PREFLIGHT_MAX_AGE = "600"


class Cors:
    def __init__(self, setting):
        origins = {origin.strip().rstrip("/") for origin in str(setting or "").split(",")}
        self.origins = origins - {""}
        self.enabled = bool(self.origins)

    def allowed(self, origin):
        """``origin`` (a request's ``Origin``) if it may read the answer, else ``None``."""
        if origin and ("*" in self.origins or origin in self.origins):
            return origin
        return None

    def headers(self, origin):
        """The CORS headers of an answer to a request from ``origin``."""
        allowed = self.allowed(origin) if self.enabled else None
        if allowed is None:
            return []
        return [
            ("Access-Control-Allow-Origin", allowed),
            ("Access-Control-Expose-Headers", EXPOSED_HEADERS),
            ("Vary", "Origin"),
        ]

    def preflight(self, environ):
        """The headers of the 204 answer to a preflight that we allow (its
        origin's own come with every answer), or ``None``."""
        is_preflight = (
            environ["REQUEST_METHOD"] == "OPTIONS"
            and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ
        )
        if not (self.enabled and is_preflight and self.allowed(environ.get("HTTP_ORIGIN"))):
            return None
        return [
            ("Access-Control-Allow-Methods", ALLOWED_METHODS),
            ("Access-Control-Allow-Headers", ALLOWED_HEADERS),
            ("Access-Control-Max-Age", PREFLIGHT_MAX_AGE),
        ]
