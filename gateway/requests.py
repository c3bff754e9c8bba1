"""Reading requests and shaping list responses, for every route.

Client input is checked here before it goes anywhere: a body must be a JSON
object, sent as JSON, at most 32 levels deep, and no text in it (or in the
query) may hold a NUL character or an unpaired surrogate, which PostgreSQL
and UTF-8 cannot store. Each is a 4xx that says what and where.
"""

import hashlib
import hmac
import json
import re
import uuid
from urllib.parse import urlencode

from nameko.extensions import DependencyProvider

from servicekit.errors import BadRequest, UnsupportedMediaType

from .errors import json_response

MAX_DEPTH = 32
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

IDEMPOTENCY_HEADER = "Idempotency-Key"
_IDEMPOTENCY_KEY = re.compile(r"^[\x20-\x7e]{1,255}$")
CLIENT_KEY_SECONDS = 24 * 3600
# Long enough for RabbitMQ to redeliver a request whose worker died.
OWN_KEY_SECONDS = 600


def _no_constants(name):
    raise ValueError(f"{name} is not JSON")


def read_json(request):
    """The body as a JSON object; anything else is a 4xx that says why."""
    # (eventlet reports a request without Content-Type as text/plain.)
    if not _is_json(request.mimetype):
        raise UnsupportedMediaType("Send the body as JSON, with Content-Type: application/json.")
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise BadRequest("The request needs a JSON object body.")
    try:
        body = json.loads(raw, parse_constant=_no_constants)
    except RecursionError:
        raise BadRequest(f"The JSON is nested more than {MAX_DEPTH} levels deep.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Malformed JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    check_storable(body)
    return body


def _is_json(mimetype):
    return mimetype == "application/json" or mimetype.endswith("+json")


def check_storable(value, path="", depth=1):
    """Refuse nesting beyond ``MAX_DEPTH`` and text that cannot be stored."""
    if depth > MAX_DEPTH:
        raise BadRequest(f"The JSON is nested more than {MAX_DEPTH} levels deep.")
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            raise BadRequest(
                "Text may not contain NUL characters or unpaired surrogates.",
                {path or "body": ["Contains a NUL character or an unpaired surrogate."]},
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            check_storable(key, path, depth)
            check_storable(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_storable(item, f"{path}[{index}]", depth + 1)


class RequestFingerprints:
    """What tells two requests with one ``Idempotency-Key`` apart: an
    HMAC-SHA256 of the method, the path and the body (as JSON, so spacing
    and key order do not matter) without its ``password`` field.

    Keyed, and blind to passwords, because the fingerprint is stored with
    the answer in the service's database: whoever reads that table learns
    nothing of a password, and cannot test guesses without the gateway's
    secret. So a repeat that differs from the first request only in its
    password is the same request (it gets the first answer).
    """

    LABEL = b"idempotency-key fingerprints"

    def __init__(self, secret):
        # A key of its own, derived from the secret under its own label.
        self._key = hmac.new(_bytes(secret), self.LABEL, hashlib.sha256).digest()

    def __repr__(self):  # never the key, in a log line or a traceback
        return f"{type(self).__name__}(...)"

    def of(self, method, path, body):
        if isinstance(body, dict):
            body = {name: value for name, value in body.items() if name != "password"}
        request_text = json.dumps([method, path, body], sort_keys=True)
        return hmac.new(self._key, request_text.encode(), hashlib.sha256).hexdigest()


def _bytes(secret):
    return secret if isinstance(secret, bytes) else str(secret).encode()


class RequestKeys(DependencyProvider):
    """``self.request_keys.of(request, caller, body)``: the ``request_key`` a
    write RPC takes (servicekit.request_keys).

    With an ``Idempotency-Key`` header: that key, kept 24 h, and the
    request's fingerprint (:class:`RequestFingerprints`, keyed with the
    gateway's secret). Without one: a key of the gateway's own, so that a
    request redelivered inside the services still acts once.
    """

    def setup(self):
        self.fingerprints = RequestFingerprints(self.container.config["JWT_SECRET"])

    def get_dependency(self, worker_ctx):
        return self

    def of(self, request, caller, body=None):
        sent = request.headers.get(IDEMPOTENCY_HEADER)
        if sent is None:
            own = f"gateway:{uuid.uuid4().hex}"
            return {"caller": caller.user_id, "key": own, "seconds": OWN_KEY_SECONDS}
        if not _IDEMPOTENCY_KEY.match(sent):
            raise BadRequest(
                "Idempotency-Key must be 1 to 255 printable ASCII characters.",
                {IDEMPOTENCY_HEADER: ["Not a valid key."]},
            )
        return {
            "caller": caller.user_id,
            "key": sent,
            "fingerprint": self.fingerprints.of(request.method, request.path, body),
            "seconds": CLIENT_KEY_SECONDS,
        }


def list_params(request, *names):
    """Query parameters to pass on; each may appear once."""
    params = {}
    for name in ("limit", "cursor", *names):
        values = request.args.getlist(name)
        if len(values) > 1:
            raise BadRequest(f"Give '{name}' once.", {name: ["Repeated parameter."]})
        if values:
            check_storable(values[0], name)
            params[name] = values[0]
    return params


def page_response(request, page, params, items=None):
    """200 with the page's items (or ``items``, as shown to the caller) and,
    when there is more, ``Link: <next>; rel="next"``.

    The link is relative to the request (RFC 8288): the same answer serves
    every host name, and a client's ``Host`` header never ends up in a cached
    answer that other clients get.
    """
    headers = {}
    if page.get("nextCursor"):
        query = {**params, "cursor": page["nextCursor"]}
        headers["Link"] = f'<{request.path}?{urlencode(query)}>; rel="next"'
    return json_response(page["items"] if items is None else items, headers=headers)
