"""The OpenAPI 3 document of the gateway (``GET /api/openapi.json``).

Generated where the code has the answer: apispec's MarshmallowPlugin turns
the marshmallow schemas that the services load and dump with into the
bodies, answers and list queries (field names, types, required fields,
limits, defaults), so the document cannot drift from the validation.
Written here is what no schema says: which view of a schema a route reads
or answers, the routes themselves (one description of the five routes of a
resource, used for articles, events and users), their statuses, headers
and access.

``gateway/tests/test_openapi.py`` checks that every route the gateway serves
is described and nothing else, that the document is valid OpenAPI, and that
it agrees with the marshmallow schemas.
"""

from dataclasses import dataclass
from functools import cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from articles.schemas import ArticleSchema
from auth.schemas import LoginSchema
from events.schemas import EventListQuerySchema, EventSchema, UTCDate
from news.schemas import NewsListQuerySchema
from servicekit.config import SERVICE_NAMES
from servicekit.pagination import PageQuerySchema
from servicekit.schemas import UTCDateTime
from users.schemas import UserSchema

OPENAPI_VERSION = "3.0.3"
# The project has no license file: nothing is granted, which this page explains.
LICENSE = {
    "name": "No license: all rights reserved",
    "url": "https://choosealicense.com/no-permission/",
}

DESCRIPTION = """\
Articles, local events and users of the Local News application.

**Errors.** Every answer that is neither a 2xx nor a 304 is JSON of one
shape, `{"error": CODE, "message": text, "details": {...}}`, where `details`
maps a field (or `body`, or a header's name) to a list of messages, or holds
other JSON, or is `{}`:

| status | `error` | when |
| --- | --- | --- |
| 400 | `BAD_REQUEST` | malformed JSON, a body that is not an object, JSON nested deeper than 32 levels, a NUL character or an unpaired surrogate anywhere in the body or the query, a bad query parameter or cursor, a malformed `Idempotency-Key` |
| 401 | `UNAUTHORIZED` | no token, a malformed `Authorization` header, a forged, expired or revoked token |
| 403 | `FORBIDDEN` | a valid token without the right |
| 404 | `NOT_FOUND` | an unknown or malformed id, an unknown route |
| 405 | `METHOD_NOT_ALLOWED` | a method that the route does not serve (any route); the `Allow` header lists those it does |
| 409 | `CONFLICT` | a duplicate email address; the last admin losing its role or being deleted; a request with the same `Idempotency-Key` still running |
| 413 | `PAYLOAD_TOO_LARGE` | a body over 1 MiB (any route) |
| 415 | `UNSUPPORTED_MEDIA_TYPE` | a body sent as another type than `application/json` or `*/*+json` |
| 422 | `VALIDATION_ERROR` | a field breaks a rule, or is unknown (`"Unknown field."`); an `Idempotency-Key` used before with another request |
| 429 | `TOO_MANY_REQUESTS` | too many failed logins; `Retry-After` says how many seconds to wait |
| 503 | `SERVICE_UNAVAILABLE` | a service that the request needs is not running (answered at once) |
| 504 | `GATEWAY_TIMEOUT` | a service did not answer in time |

A failed login is a 401 of its own shape (`LoginFailure`).

**Headers.** Every answer carries `X-Request-Id`: the request's own, if it
sent 1 to 64 of `A-Z a-z 0-9 . _ -`, else a new one. Every `GET` answer has
an `ETag` and a `Cache-Control`; send the `ETag` back in `If-None-Match` and
an unchanged answer is a `304 Not Modified` without a body. Lists are newest
first, `limit` items a page; when more exist, `Link: <url>; rel="next"`
points to the next page (a URL relative to the request).

**Writes act once.** `POST`, `PUT` and `DELETE` of articles, events and
users take an optional `Idempotency-Key`: a repeat with the same key and
the same request within 24 hours gets the first answer again; the same key
with another request is a 422, and while the first is still running, a 409.

**Dates.** Answers carry ISO 8601 in UTC with `Z`. Dates sent (`eventDate`,
`from`, `to`) are ISO 8601 date-times, with an offset or without one (then
UTC), or dates alone.
"""

TAGS = [
    {"name": "Articles", "description": "News articles: public reads, written by their author."},
    {"name": "Events", "description": "Local happenings with an `eventDate`; lists filter by it."},
    {
        "name": "Users",
        "description": "Public profiles; the email address only for an admin or the user itself.",
    },
    {"name": "Auth", "description": "Logging in: a token for the `bearerAuth` routes."},
    {"name": "Operations", "description": "Whether the services are up."},
    {"name": "Documentation", "description": "This document, and a page that shows it."},
    {"name": "Feed", "description": "Every change of articles and events, as it happens."},
]

# Security requirements: open to anyone, a token, a token that changes the answer.
PUBLIC = []
TOKEN = [{"bearerAuth": []}]
OPTIONAL_TOKEN = [{}, {"bearerAuth": []}]

# status: (response component, `error` code, when)
ERRORS = {
    400: (
        "BadRequest",
        "BAD_REQUEST",
        "Malformed JSON, a body that is not an object or nested deeper than 32 levels, "
        "a NUL character or an unpaired surrogate in the body or the query, "
        "a bad query parameter, cursor or Idempotency-Key.",
    ),
    401: (
        "Unauthorized",
        "UNAUTHORIZED",
        "No token, a malformed Authorization header, or a forged, expired or revoked token.",
    ),
    403: ("Forbidden", "FORBIDDEN", "A valid token without the right."),
    404: ("NotFound", "NOT_FOUND", "Unknown or malformed id."),
    409: ("Conflict", "CONFLICT", "A request with the same Idempotency-Key is still running."),
    413: ("PayloadTooLarge", "PAYLOAD_TOO_LARGE", "The body is over 1 MiB."),
    415: (
        "UnsupportedMediaType",
        "UNSUPPORTED_MEDIA_TYPE",
        "The body is not sent as `application/json` (or another `*/*+json` type).",
    ),
    422: (
        "ValidationError",
        "VALIDATION_ERROR",
        "A field breaks a rule or is unknown (`details` maps each field to its messages), "
        "or the Idempotency-Key was used before with another request.",
    ),
    429: (
        "TooManyRequests",
        "TOO_MANY_REQUESTS",
        "Too many failed logins; retry after `Retry-After` seconds.",
    ),
    503: (
        "ServiceUnavailable",
        "SERVICE_UNAVAILABLE",
        "A service that the request needs is not running.",
    ),
    504: ("GatewayTimeout", "GATEWAY_TIMEOUT", "A service did not answer within the deadline."),
}
# Every route that calls a service may meet these.
SERVICE_ERRORS = (503, 504)
# What a write of a JSON body may meet before any service sees it.
BODY_ERRORS = (400, 415, 422)

HEADER_COMPONENTS = {
    "X-Request-Id": "RequestId",
    "ETag": "ETag",
    "Cache-Control": "CacheControl",
    "Link": "Link",
    "Location": "Location",
    "Retry-After": "RetryAfter",
    "X-Cache": "XCache",
    "Vary": "Vary",
    "Content-Security-Policy": "ContentSecurityPolicy",
}
READ_HEADERS = ("ETag", "Cache-Control")


# --- small builders -----------------------------------------------------------


def schema_ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties, required=(), **extra):
    schema = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    return schema


def string(**extra):
    return {"type": "string", **extra}


def integer(**extra):
    return {"type": "integer", **extra}


def array(items, **extra):
    return {"type": "array", "items": items, **extra}


def json_content(schema, **extra):
    return {"application/json": {"schema": schema, **extra}}


def response(description, schema=None, headers=(), content=None):
    """An answer; ``headers`` are names of HEADER_COMPONENTS (every answer
    has ``X-Request-Id``)."""
    answer = {"description": description}
    if schema is not None:
        content = json_content(schema)
    if content is not None:
        answer["content"] = content
    answer["headers"] = {name: HEADER_COMPONENTS[name] for name in ("X-Request-Id", *headers)}
    return answer


def error_response(status, description=None):
    """The error JSON of ``status``, with ``description`` if this route says more."""
    _, code, default = ERRORS[status]
    example = {"error": code, "message": (description or default).split(";")[0], "details": {}}
    answer = response(description or default, content=json_content(schema_ref("Error")))
    answer["content"]["application/json"]["example"] = example
    if status == 429:
        answer["headers"]["Retry-After"] = HEADER_COMPONENTS["Retry-After"]
    return answer


def operation(
    operation_id,
    summary,
    answers,
    errors,
    *,
    tag,
    security,
    description=None,
    params=(),
    body=None,
    read=False,
    idempotent=False,
):
    """One operation, named after the gateway method that serves it.

    ``answers`` maps statuses to responses; ``errors`` are statuses (or
    ``(status, description)`` where this route says more) answered with the
    error JSON. Any request may be refused for a body over 1 MiB; a ``read``
    answers 304 to a current ``If-None-Match``.
    """
    responses = {str(status): answer for status, answer in answers.items()}
    if read:
        responses["304"] = "NotModified"
    for item in (*errors, 413):
        status, text = item if isinstance(item, tuple) else (item, None)
        responses[str(status)] = error_response(status, text) if text else ERRORS[status][0]
    op = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if description:
        op["description"] = description
    op["parameters"] = [
        *params,
        *(["IfNoneMatch"] if read else []),
        *(["IdempotencyKey"] if idempotent else []),
        "RequestId",
    ]
    if body:
        op["requestBody"] = {
            "required": True,
            "description": "JSON (`application/json` or any `*/*+json` type).",
            "content": json_content(schema_ref(body)),
        }
    op["responses"] = dict(sorted(responses.items()))
    op["security"] = security
    return op


# --- schemas from marshmallow -------------------------------------------------

INPUT_DATE = (
    "ISO 8601: a date-time with an offset, or one without (UTC), or a date alone; "
    "years 1000 to 9998. A date that does not exist (30 February) is refused."
)
# Years 1000-9998, so that no offset can move an instant out of the years a
# datetime holds; the days of each month are checked by the service.
_YEAR, _MONTH, _DAY = (
    r"(1\d{3}|[2-8]\d{3}|9[0-8]\d{2}|99[0-8]\d|999[0-8])",
    r"(0[1-9]|1[0-2])",
    r"(0[1-9]|[12]\d|3[01])",
)
_TIME = r"([01]\d|2[0-3])(:[0-5]\d(:[0-5]\d(\.\d{1,6})?)?)?"
_OFFSET = r"(Z|[+-]([01]\d|2[0-3]):?[0-5]\d)?"
INPUT_DATE_PATTERN = f"^{_YEAR}-{_MONTH}-{_DAY}([T ]{_TIME}{_OFFSET})?$"


def input_date(description=INPUT_DATE):
    """What ``UTCDate`` loads: ISO 8601 date-times, with or without an offset, and dates."""
    return {
        "description": description,
        "type": "string",
        "pattern": INPUT_DATE_PATTERN,
        "example": "2026-12-05T08:00:00+01:00",
    }


def dates_and_defaults(converter, field, ret, **kwargs):
    """apispec attribute function: dates as every answer writes them, and
    factory defaults (``load_default=list``) as their value."""
    extra = {}
    if isinstance(field, UTCDateTime | UTCDate):
        extra = string(
            format="date-time",
            description="ISO 8601 in UTC, with `Z`.",
            example="2026-12-05T07:00:00.000000Z",
        )
    if callable(field.load_default) and "default" not in ret:
        extra["default"] = field._serialize(field.load_default(), None, None)
    return extra


def wire_names(fields):
    return [field.data_key or name for name, field in fields.items()]


def server_owned(schema):
    """Fields that a schema dumps but does not load: sent back, they are ignored."""
    instance = schema()
    loaded = wire_names(instance.load_fields)
    return [name for name in wire_names(instance.dump_fields) if name not in loaded]


@dataclass(frozen=True)
class View:
    """How one marshmallow schema is shown.

    ``answer``: what routes answer, every dumped field (but ``exclude``),
    always present, nothing more. Else a body: the fields the schema loads,
    required as the schema says (``partial``: none) but the ``optional``
    ones, which the gateway fills in. ``notes`` say more of a property: a
    description, or schema keywords marshmallow cannot give.
    """

    name: str
    schema: type
    description: str
    answer: bool = False
    exclude: tuple = ()
    partial: bool = False
    optional: tuple = ()
    notes: tuple = ()  # (property, description or dict of keywords)
    ignored: tuple = ()  # (property, description): accepted as anything, ignored


def add_view(spec, view):
    base = view.schema()
    fields = base.dump_fields if view.answer else base.load_fields
    names = [name for name, f in fields.items() if (f.data_key or name) not in view.exclude]
    instance = view.schema(only=names, partial=view.partial)
    spec.components.schema(view.name, schema=instance)
    component = spec.components.schemas[view.name]
    component["description"] = view.description
    properties = component["properties"]
    if view.answer or view.partial:  # answers have every field; a change has no defaults
        for prop in properties.values():
            prop.pop("default", None)
    if view.answer:
        component["required"] = list(properties)
        component["additionalProperties"] = False
    else:
        required = [name for name in component.pop("required", ()) if name not in view.optional]
        if required:
            component["required"] = required
        for name, field in instance.load_fields.items():
            if isinstance(field, UTCDate):
                properties[field.data_key or name] = input_date()
    for name, note in view.notes:
        properties[name].update({"description": note} if isinstance(note, str) else note)
    for name, note in view.ignored:
        properties[name] = {"description": note}


def news_views(name, schema, counter):
    """An article's or an event's views: as answered, created, changed."""
    a = f"An {name.lower()}" if name[0] in "AEIOU" else f"A {name.lower()}"
    author = (
        "authorUID",
        "The author's user id. On create it defaults to the caller; "
        "only an admin may name another user.",
    )
    meta = f"Counters (`{counter}`), integers >= 0."
    ignored = ", ".join(f"`{field}`" for field in server_owned(schema))
    return [
        View(name, schema, f"{a} as every caller sees it.", answer=True),
        View(
            f"New{name}",
            schema,
            f"{a} to create. The server-owned fields of the answer ({ignored}) may be "
            "sent back and are ignored; any other unknown field is a 422.",
            optional=("authorUID",),
            notes=(author,),
            ignored=(("meta", "Ignored on create, whatever it holds: counters start at 0."),),
        ),
        View(
            f"{name}Update",
            schema,
            f"A change of {a.lower()}: only the fields sent change. Server-owned fields "
            f"({ignored}) are ignored; any other unknown field is a 422.",
            partial=True,
            notes=(author, ("meta", f"{meta} May be set on update.")),
        ),
    ]


def user_views():
    meta = obj({"likes": integer(minimum=0)}, ["likes"], additionalProperties=False)
    ignored = ", ".join(f"`{field}`" for field in server_owned(UserSchema))
    role = ("role", "Only an admin may set it.")
    return [
        View(
            "User",
            UserSchema,
            "A user with its email address: as an admin, or the user itself, sees it.",
            answer=True,
            notes=(("meta", meta),),
        ),
        View(
            "PublicUser",
            UserSchema,
            "A user as anyone else sees it: without the email address.",
            answer=True,
            exclude=("emailAddress",),
            notes=(("meta", meta),),
        ),
        View(
            "NewUser",
            UserSchema,
            f"A user to create. The server-owned fields of the answer ({ignored}) may be "
            "sent back and are ignored; any other unknown field is a 422.",
            notes=(role,),
        ),
        View(
            "UserUpdate",
            UserSchema,
            "A change of a user: only the fields sent change (a new `password` is stored "
            f"like on create). Server-owned fields ({ignored}) are ignored; any other unknown "
            "field is a 422.",
            partial=True,
            notes=(role,),
        ),
    ]


VIEWS = [
    *news_views("Article", ArticleSchema, "likes"),
    *news_views("Event", EventSchema, "attending"),
    *user_views(),
    View(
        "Login",
        LoginSchema,
        "Credentials. Any text is taken as `emailAddress`: a wrong one fails like a wrong "
        "password. Unknown fields are a 422.",
    ),
]

# The list routes' query parameters come from their marshmallow schemas;
# these say what they mean.
QUERY_NOTES = {
    "limit": "Items per page.",
    "cursor": "Opaque: from the `Link` of the previous page.",
    "tag": "Only items with this tag.",
    "q": "A full-text search of the title (weighs most), description and body, with word "
    "forms (`bridges` finds `bridge`), read as a web search reads it: words, "
    '"quoted phrases", `or`, `-word`. Best match first, newest among equals; '
    "combines with the other filters.",
    "from": f"Events whose `eventDate` is this or later; after `to`, a 400. {INPUT_DATE}",
    "to": f"Events whose `eventDate` is this or earlier; a date alone includes that whole "
    f"day. {INPUT_DATE}",
}


def query_parameters(spec, converter, schema):
    """Parameter components for the fields of a list's schema; their names."""
    instance = schema()
    fields = {field.data_key or name: field for name, field in instance.load_fields.items()}
    names = []
    for param in converter.schema2parameters(instance, location="query"):
        name = param["name"]
        if isinstance(fields[name], UTCDate):
            param["schema"] = input_date()
        param["schema"].pop("nullable", None)  # a query parameter is absent, never null
        if "default" in param["schema"] and param["schema"]["default"] is None:
            del param["schema"]["default"]
        param["description"] = QUERY_NOTES[name]
        known = spec.components.parameters.get(name) or spec.components.parameters_lazy.get(name)
        if known is None:
            spec.components.parameter(name, "query", param, lazy=True)
        elif known != param:
            raise ValueError(f"The query parameter {name!r} differs between lists.")
        names.append(name)
    return names


# --- hand-written components --------------------------------------------------

REQUEST_ID = string(pattern=r"^[A-Za-z0-9._-]{1,64}$")


def add_headers(spec):
    headers = {
        "RequestId": {
            "description": "The request's own `X-Request-Id` if it sent a valid one, "
            "else a new id; every log line that the request causes carries it.",
            "schema": REQUEST_ID,
        },
        "ETag": {
            "description": "The answer's entity tag: send it in `If-None-Match`.",
            "schema": string(),
        },
        "CacheControl": {
            "description": "`public, no-cache` (articles, events), `no-cache` or "
            "`private, no-cache` (users, without or with a token), `no-cache` (other "
            "reads): caches must revalidate with the `ETag`. Files of the docs page are "
            "kept a year (their names change with their content).",
            "schema": string(),
        },
        "Link": {
            "description": 'The next page, if any: `</api/...?cursor=...>; rel="next"`, '
            "relative to the request.",
            "schema": string(),
        },
        "Location": {"description": "The path of the new item.", "schema": string()},
        "RetryAfter": {
            "description": "Seconds to wait before trying again.",
            "schema": integer(minimum=1),
        },
        "XCache": {
            "description": "Whether the gateway's read cache answered (`hit`) or a service.",
            "schema": string(enum=["hit", "miss"]),
        },
        "Vary": {
            "description": "`Authorization`: the answer depends on the caller.",
            "schema": string(),
        },
        "ContentSecurityPolicy": {
            "description": "What the page may load: its own scripts, styles and images, "
            "and this document, from this origin only.",
            "schema": string(),
        },
    }
    for name, header in headers.items():
        spec.components.header(name, header, lazy=True)


# One message of the feed, as an event-stream parser reads it.
FEED_MESSAGE = {
    "type": "object",
    "properties": {
        "id": string(description="The change's `eventId`."),
        "event": string(
            enum=[
                *(f"{kind}_{change}" for kind in ("article", "event")
                  for change in ("added", "updated", "deleted")),
                "reset",
            ],
        ),
        "data": string(description="The item as JSON; for `reset`, why."),
        "retry": integer(description="Milliseconds to wait before reconnecting."),
    },
}  # fmt: skip


def add_parameters(spec):
    parameters = {
        "RequestId": (
            "header",
            {
                "name": "X-Request-Id",
                "description": "A correlation id for this request: 1 to 64 of "
                "`A-Z a-z 0-9 . _ -` are echoed back; anything else is replaced by a new one.",
                "schema": string(),
            },
        ),
        "IfNoneMatch": (
            "header",
            {
                "name": "If-None-Match",
                "description": "The `ETag` of an answer you have: while it is current, "
                "the answer is a 304 without a body.",
                "schema": string(),
            },
        ),
        "IdempotencyKey": (
            "header",
            {
                "name": "Idempotency-Key",
                "description": "1 to 255 printable ASCII characters that make a retried write "
                "act once: a repeat with the same key and the same request within 24 hours "
                "gets the first answer again. The same key with another request is a 422; "
                "while the first is still running, a 409.",
                "schema": string(minLength=1, maxLength=255, pattern=r"^[\x20-\x7E]+$"),
            },
        ),
        "id": (
            "path",
            {"description": "The item's id (a UUID); any other text is a 404.", "schema": string()},
        ),
        "asset": (
            "path",
            {"description": "A file that the docs page names.", "schema": string()},
        ),
        "types": (
            "query",
            {
                "description": "Only these resources' changes: `articles`, `events`, or "
                "`articles,events` (the default).",
                "schema": string(pattern=r"^(articles|events)(,(articles|events))?$"),
            },
        ),
        "LastEventId": (
            "header",
            {
                "name": "Last-Event-ID",
                "description": "The `id` of the last message a reconnecting client got "
                "(browsers' EventSource sends it): every change after it follows, or a `reset` "
                "message if this gateway no longer holds that change.",
                "schema": string(),
            },
        ),
    }
    for name, (location, parameter) in parameters.items():
        spec.components.parameter(name, location, parameter, lazy=True)


def add_schemas(spec):
    details = {
        "type": "object",
        "additionalProperties": True,
        "description": "Per field (or `body`, or a header's name): a list of messages; or "
        "other JSON; often `{}`.",
    }
    spec.components.schema(
        "Error",
        obj(
            {
                "error": string(description="The code: one per status, see the table above."),
                "message": string(description="What went wrong, for people."),
                "details": details,
            },
            ["error", "message", "details"],
            example={
                "error": "VALIDATION_ERROR",
                "message": "The request has invalid fields.",
                "details": {"emailAddress": ["Not a valid email address."]},
            },
        ),
    )
    spec.components.schema(
        "LoginResult",
        obj(
            {
                "auth": {"type": "boolean", "enum": [True]},
                "token": string(description="A JWT for `Authorization: Bearer <token>`."),
                "expiresIn": integer(minimum=1, description="Seconds the token is valid."),
            },
            ["auth", "token", "expiresIn"],
        ),
    )
    spec.components.schema(
        "LoginFailure",
        obj(
            {
                "auth": {"type": "boolean", "enum": [False]},
                "token": string(nullable=True, description="Always `null`."),
                "error": string(enum=["INVALID_CREDENTIALS"]),
                "message": string(),
                "details": details,
            },
            ["auth", "token", "error", "message", "details"],
            description="The same for an unknown email address and a wrong password.",
        ),
    )
    status = string(enum=["ok", "starting", "unavailable", "timeout", "error"])
    spec.components.schema(
        "Health",
        obj(
            {
                "status": string(enum=["ok", "degraded"]),
                "services": obj(
                    dict.fromkeys(SERVICE_NAMES, status),
                    SERVICE_NAMES,
                    additionalProperties=False,
                    description="Per service: `ok`; `starting` (auth, until the seeded admin "
                    "can log in); `unavailable` (not running); `timeout`; `error`.",
                ),
            },
            ["status", "services"],
        ),
    )


def add_responses(spec):
    spec.components.response(
        "NotModified",
        response("Not Modified: the `If-None-Match` ETag is current. No body.", None, READ_HEADERS),
        lazy=True,
    )
    for status, (name, _, _) in ERRORS.items():
        spec.components.response(name, error_response(status), lazy=True)


# --- paths --------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """What the five routes of a resource differ in."""

    plural: str
    singular: str
    name: str  # of its schemas: Name, NewName, NameUpdate
    query: type  # the list's marshmallow schema
    read: dict  # the schema of an item as reads answer it
    read_security: list
    read_headers: tuple
    access: dict  # method: who may
    forbidden: dict  # method: when a 403
    conflict: dict  # method: when a 409 (None: the usual)

    @property
    def a(self):
        return f"a {self.singular}" if self.singular == "user" else f"an {self.singular}"


def resource_paths(spec, converter, r):
    """The five routes of the resource ``r``."""
    tag = r.plural.capitalize()
    item = schema_ref(r.name)
    read_headers = (*READ_HEADERS, "X-Cache", *r.read_headers)

    def reading(operation_id, summary, answer, errors, **more):
        return operation(
            operation_id,
            summary,
            {200: answer},
            (400, *errors, *SERVICE_ERRORS),
            read=True,
            tag=tag,
            security=r.read_security,
            **more,
        )

    def writing(operation_id, method, summary, answers, *errors, **more):
        """A write: who may, why a 403 or a 409, once per Idempotency-Key."""
        may = [
            (status, why[method]) if why[method] else status
            for status, why in ((403, r.forbidden), (409, r.conflict))
        ]
        return operation(
            operation_id,
            f"{summary} ({r.access[method]})",
            answers,
            (*BODY_ERRORS, 401, *may, *errors, *SERVICE_ERRORS),
            idempotent=True,
            tag=tag,
            security=TOKEN,
            **more,
        )

    page = response(f"A page of {r.plural}, newest first.", array(r.read), (*read_headers, "Link"))
    return {
        f"/api/{r.plural}": {
            "get": reading(
                f"list_{r.plural}",
                f"List {r.plural}",
                page,
                (),
                params=query_parameters(spec, converter, r.query),
            ),
            "post": writing(
                f"create_{r.singular}",
                "post",
                f"Create {r.a}",
                {201: response(f"The stored {r.singular}.", item, ["Location"])},
                body=f"New{r.name}",
            ),
        },
        f"/api/{r.plural}/{{id}}": {
            "parameters": ["id"],
            "get": reading(
                f"get_{r.singular}",
                f"Get {r.a}",
                response(f"The {r.singular}.", r.read, read_headers),
                (404,),
            ),
            "put": writing(
                f"update_{r.singular}",
                "put",
                f"Change {r.a}",
                {200: response(f"The {r.singular} as changed.", item)},
                404,
                body=f"{r.name}Update",
                description="Only the fields sent change.",
            ),
            "delete": writing(
                f"delete_{r.singular}",
                "delete",
                f"Delete {r.a}",
                {200: response(f"The deleted {r.singular}, as it was.", item)},
                404,
            ),
        },
    }


NEWS_ACCESS = {
    "post": "any token",
    "put": "its author or an admin",
    "delete": "its author or an admin",
}
NEWS_FORBIDDEN = {
    "post": "A caller who is no admin names another user as `authorUID`.",
    "put": "The caller is neither the author nor an admin, or names another user as "
    "`authorUID` without being an admin.",
    "delete": "The caller is neither the author nor an admin.",
}
NO_CONFLICT = dict.fromkeys(("post", "put", "delete"))


def news_resource(plural, singular, name, query):
    return Resource(
        plural,
        singular,
        name,
        query,
        read=schema_ref(name),
        read_security=PUBLIC,
        read_headers=(),
        access=NEWS_ACCESS,
        forbidden=NEWS_FORBIDDEN,
        conflict=NO_CONFLICT,
    )


RUNNING = "or a request with the same Idempotency-Key is still running."
USERS = Resource(
    "users",
    "user",
    "User",
    PageQuerySchema,
    read={
        "oneOf": [schema_ref("User"), schema_ref("PublicUser")],
        "description": "`User` (with `emailAddress`) for an admin or the user itself; "
        "`PublicUser` for anyone else and without a token.",
    },
    read_security=OPTIONAL_TOKEN,
    read_headers=("Vary",),
    access={"post": "admin", "put": "admin, or the user itself", "delete": "admin"},
    forbidden={
        "post": "The caller is no admin.",
        "put": "The caller is neither an admin nor the user itself, or changes `role` "
        "without being an admin.",
        "delete": "The caller is no admin.",
    },
    conflict={
        "post": f"The email address is in use (ignoring case), {RUNNING}",
        "put": f"The email address is in use (ignoring case), the last admin would lose "
        f"its role, {RUNNING}",
        "delete": f"The user is the last admin, {RUNNING}",
    },
)


def other_paths():
    health = schema_ref("Health")
    text = {"schema": string()}
    return {
        "/api/auth": {
            "post": operation(
                "login",
                "Log in",
                {
                    200: response("A token.", schema_ref("LoginResult")),
                    401: response("Wrong email address or password.", schema_ref("LoginFailure")),
                },
                (*BODY_ERRORS, 429, *SERVICE_ERRORS),
                body="Login",
                tag="Auth",
                security=PUBLIC,
                description="Five failed logins for one account within 15 minutes (or twenty "
                "from one address) block further tries for a while: 429.",
            )
        },
        "/health": {
            "get": operation(
                "health",
                "Health of every service",
                {
                    200: response(
                        "Every service is `ok` (auth: the seeded admin can log in).",
                        health,
                        READ_HEADERS,
                    ),
                    503: response("A service is not `ok`: `status` is `degraded`.", health),
                },
                (),
                read=True,
                tag="Operations",
                security=PUBLIC,
            )
        },
        "/api/feed": {
            "get": operation(
                "get_feed",
                "Every change of articles and events, as it happens",
                {
                    200: response(
                        "A stream of server-sent events that stays open. Each change is "
                        "`id: <eventId>`, `event: <type>` (`article_added`, `article_updated`, "
                        "`article_deleted`, `event_added`, ...), `data: <the item as the public "
                        "sees it, as JSON; the deleted item for a delete>`. A comment line "
                        "keeps idle streams open; `retry:` says how soon to reconnect.",
                        content={"text/event-stream": {"schema": FEED_MESSAGE}},
                        headers=("Cache-Control",),
                    )
                },
                (400, (503, "The feed has all the clients it takes (`FEED_MAX_CLIENTS`).")),
                params=("types", "LastEventId"),
                tag="Feed",
                security=PUBLIC,
            )
        },
        "/api/openapi.json": {
            "get": operation(
                "openapi",
                "This document",
                {
                    200: response(
                        "The OpenAPI 3 document.",
                        {"type": "object", "description": "An OpenAPI 3.0 document."},
                        READ_HEADERS,
                    )
                },
                (),
                read=True,
                tag="Documentation",
                security=PUBLIC,
            )
        },
        "/api/docs": {
            "get": operation(
                "docs",
                "The API documentation page",
                {
                    200: response(
                        "An HTML page showing this document (Swagger UI), every file of it "
                        "served from here.",
                        content={"text/html": text},
                        headers=(*READ_HEADERS, "Content-Security-Policy"),
                    )
                },
                (),
                read=True,
                tag="Documentation",
                security=PUBLIC,
            )
        },
        "/api/docs/{asset}": {
            "parameters": ["asset"],
            "get": operation(
                "docs_asset",
                "A file of the documentation page",
                {
                    200: response(
                        "The file.",
                        content={
                            "text/javascript": text,
                            "text/css": text,
                            "image/png": {"schema": string(format="binary")},
                        },
                        headers=READ_HEADERS,
                    )
                },
                ((404, "No such file."),),
                read=True,
                tag="Documentation",
                security=PUBLIC,
            ),
        },
    }


@cache
def openapi_document(server_url):
    """The document, for a gateway reached at ``server_url`` (PUBLIC_BASE_URL).
    Built once per URL; callers must not change it."""
    plugin = MarshmallowPlugin(schema_name_resolver=lambda schema: None)  # nested: inline
    spec = APISpec(
        title="Local News API",
        version="1.0.0",
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
    )
    plugin.converter.add_attribute_function(dates_and_defaults)
    spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    add_headers(spec)
    add_parameters(spec)
    add_schemas(spec)
    add_responses(spec)
    for view in VIEWS:
        add_view(spec, view)
    converter = plugin.converter
    paths = {
        **other_paths(),
        **resource_paths(spec, converter, USERS),
        **resource_paths(
            spec, converter, news_resource("articles", "article", "Article", NewsListQuerySchema)
        ),
        **resource_paths(
            spec, converter, news_resource("events", "event", "Event", EventListQuerySchema)
        ),
    }
    for path, item in paths.items():
        spec.path(path, parameters=item.pop("parameters", None), operations=item)
    generated = spec.to_dict()
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            **generated["info"],
            "description": DESCRIPTION,
            "license": LICENSE,
        },
        "servers": [{"url": server_url.rstrip("/") or "/", "description": "This deployment."}],
        "tags": TAGS,
        "paths": generated["paths"],
        "components": generated["components"],
    }
