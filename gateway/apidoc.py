"""How a route describes itself in the OpenAPI document.

Each route carries its own description, next to its code:
``@http("GET", "/api/articles/<article_id>", cached="articles", doc=...)``
with a :class:`Doc`: its summary, who may call it (:class:`Access`), its
answers (:class:`Answer`, of a :class:`View` of a marshmallow schema or a
:class:`Schema`), the errors it may give, its body and list query.
:mod:`gateway.openapi` only assembles what the routes say.

The five routes of a resource are alike but for their words:
:func:`resource_docs` writes them once for articles, events and users.
"""

from dataclasses import dataclass

# Security requirements: open to anyone, a token, a token that changes the answer.
PUBLIC = []
TOKEN = [{"bearerAuth": []}]
OPTIONAL_TOKEN = [{}, {"bearerAuth": []}]

# Every route that calls a service may meet these.
SERVICE_ERRORS = (503, 504)
# What a write of a JSON body may meet before any service sees it.
BODY_ERRORS = (400, 415, 422)


@dataclass(frozen=True)
class Access:
    """Who may call a route: ``who`` (in its summary), the security
    requirement, and when a token is refused for want of the right (403)."""

    who: str
    security: list
    forbidden: str | None = None


ANYONE = Access("anyone", PUBLIC)


@dataclass(frozen=True)
class Schema:
    """A schema written as JSON Schema, a component of the document."""

    name: str
    schema: dict


@dataclass(frozen=True)
class View:
    """How one marshmallow schema is shown, as a component of the document.

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


@dataclass(frozen=True)
class OneOf:
    """An answer that is one of these views, as ``description`` says."""

    description: str
    views: tuple


@dataclass(frozen=True)
class Param:
    """A parameter of the routes of one module (a component of the document);
    others are named by their component (``"RequestId"``, see PARAMETERS)."""

    name: str
    location: str  # "path", "query", "header"
    spec: dict


@dataclass(frozen=True)
class Answer:
    """A success answer: its description, its JSON (a :class:`View`, a
    :class:`Schema`, a :class:`OneOf` or inline JSON Schema; ``[view]``: a
    list of them) or other ``content``, and the
    headers it carries (their names; every answer has ``X-Request-Id``)."""

    description: str
    schema: object = None
    headers: tuple = ()
    content: dict | None = None


@dataclass(frozen=True)
class Doc:
    """A route in the document (the operation is named after its method).

    ``errors``: statuses answered with the error JSON, or ``(status, text)``
    where the route says more than the usual; a body over 1 MiB (413) may
    meet any route. ``params``: parameters (a :class:`Param`, or the name of
    a shared one); ``query``: the marshmallow schema of a list's query.
    """

    summary: str
    tag: str
    answers: dict
    errors: tuple = ()
    access: Access = ANYONE
    body: View | None = None
    query: type | None = None
    params: tuple = ()
    description: str | None = None
    conditional: bool = True  # a GET: an ETag, If-None-Match, 304


def server_owned(schema):
    """Fields that a schema dumps but does not load: sent back, they are ignored."""
    instance = schema()
    loaded = {f.data_key or name for name, f in instance.load_fields.items()}
    dumped = [f.data_key or name for name, f in instance.dump_fields.items()]
    return [name for name in dumped if name not in loaded]


@dataclass(frozen=True)
class ResourceWords:
    """What the five routes of a resource differ in."""

    plural: str
    singular: str
    query: type  # the list's marshmallow schema
    item: View  # an item as answered to a write
    read: object  # an item as reads answer it (a View, or JSON Schema)
    new: View  # the body of a create
    update: View  # the body of a change
    access: dict  # "list", "get", "create", "update", "delete": Access
    conflict: dict  # "create", "update", "delete": when a 409 (None: the usual)
    read_headers: tuple = ()
    list_errors: tuple = ()  # what else a list may answer (a search's 422)

    @property
    def a(self):
        # "an article", "an event", "a user" (said "you-zer")
        vowel = self.singular[0] in "aeio"
        return f"an {self.singular}" if vowel else f"a {self.singular}"


def resource_docs(r):
    """``{"list", "get", "create", "update", "delete"}``: the five routes' docs."""
    tag = r.plural.capitalize()
    read_headers = ("ETag", "Cache-Control", "X-Cache", *r.read_headers)

    def write(step, summary, answers, *errors, **more):
        access = r.access[step]
        why = [(403, access.forbidden)]
        why.append((409, r.conflict[step]) if r.conflict[step] else 409)
        return Doc(
            f"{summary} ({access.who})", tag, answers,
            (*BODY_ERRORS, 401, *why, *errors, *SERVICE_ERRORS), access, **more,
        )  # fmt: skip

    page = Answer(f"A page of {r.plural}, newest first.", [r.read], (*read_headers, "Link"))
    return {
        "list": Doc(
            f"List {r.plural}",
            tag,
            {200: page},
            (400, *r.list_errors, *SERVICE_ERRORS),
            r.access["list"],
            query=r.query,
        ),
        "get": Doc(
            f"Get {r.a}",
            tag,
            {200: Answer(f"The {r.singular}.", r.read, read_headers)},
            (400, 404, *SERVICE_ERRORS),
            r.access["get"],
        ),
        "create": write(
            "create",
            f"Create {r.a}",
            {201: Answer(f"The stored {r.singular}.", r.item, ("Location",))},
            body=r.new,
        ),
        "update": write(
            "update",
            f"Change {r.a}",
            {200: Answer(f"The {r.singular} as changed.", r.item)},
            404,
            body=r.update,
            description="Only the fields sent change.",
        ),
        "delete": write(
            "delete",
            f"Delete {r.a}",
            {200: Answer(f"The deleted {r.singular}, as it was.", r.item)},
            404,
        ),
    }


def news_docs(plural, singular, views, query, access):
    """The five routes' docs of articles or events (``views``: their
    :func:`news_views`; ``access``: who may do what)."""
    item, new, update = views
    running = "A request with the same Idempotency-Key is still running."
    conflict = dict.fromkeys(("create", "update", "delete"), running)
    words = ResourceWords(
        plural, singular, query, item, item, new, update, access, conflict,
        list_errors=((422, "A `q` of only exclusions: say what to look for."),),
    )  # fmt: skip
    return resource_docs(words)


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
    return (
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
    )


# --- what every route shares ------------------------------------------------------

CONVENTIONS = """\
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

_DETAILS = {
    "type": "object",
    "additionalProperties": True,
    "description": "Per field (or `body`, or a header's name): a list of messages; or "
    "other JSON; often `{}`.",
}
ERROR = Schema(
    "Error",
    {
        "type": "object",
        "properties": {
            "error": {
                "type": "string",
                "description": "The code: one per status, see the table above.",
            },
            "message": {"type": "string", "description": "What went wrong, for people."},
            "details": _DETAILS,
        },
        "required": ["error", "message", "details"],
        "example": {
            "error": "VALIDATION_ERROR",
            "message": "The request has invalid fields.",
            "details": {"emailAddress": ["Not a valid email address."]},
        },
    },
)
LOGIN_FAILURE = Schema(
    "LoginFailure",
    {
        "type": "object",
        "properties": {
            "auth": {"type": "boolean", "enum": [False]},
            "token": {"type": "string", "nullable": True, "description": "Always `null`."},
            "error": {"type": "string", "enum": ["INVALID_CREDENTIALS"]},
            "message": {"type": "string"},
            "details": _DETAILS,
        },
        "required": ["auth", "token", "error", "message", "details"],
        "description": "The same for an unknown email address and a wrong password.",
    },
)
NOT_MODIFIED = "Not Modified: the `If-None-Match` ETag is current. No body."

# Headers of answers: name -> (component, description and schema).
HEADERS = {
    "X-Request-Id": ("RequestId", {
        "description": "The request's own `X-Request-Id` if it sent a valid one, "
        "else a new id; every log line that the request causes carries it.",
        "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._-]{1,64}$"},
    }),
    "ETag": ("ETag", {
        "description": "The answer's entity tag: send it in `If-None-Match`.",
        "schema": {"type": "string"},
    }),
    "Cache-Control": ("CacheControl", {
        "description": "`public, no-cache` (articles, events), `no-cache` or "
        "`private, no-cache` (users, without or with a token), `no-cache` (other "
        "reads): caches must revalidate with the `ETag`. Files of the docs page are "
        "kept a year (their names change with their content).",
        "schema": {"type": "string"},
    }),
    "Link": ("Link", {
        "description": 'The next page, if any: `</api/...?cursor=...>; rel="next"`, '
        "relative to the request.",
        "schema": {"type": "string"},
    }),
    "Location": ("Location", {"description": "The path of the new item.", "schema": {"type": "string"}}),
    "Retry-After": ("RetryAfter", {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    }),
    "X-Cache": ("XCache", {
        "description": "Whether the gateway's read cache answered (`hit`) or a service.",
        "schema": {"type": "string", "enum": ["hit", "miss"]},
    }),
    "Vary": ("Vary", {
        "description": "`Authorization`: the answer depends on the caller.",
        "schema": {"type": "string"},
    }),
    "Content-Security-Policy": ("ContentSecurityPolicy", {
        "description": "What the page may load: its own scripts, styles and images, "
        "and this document, from this origin only.",
        "schema": {"type": "string"},
    }),
}  # fmt: skip

# Parameters that are not a list's query: name -> (location, parameter).
PARAMETERS = {
    "RequestId": ("header", {
        "name": "X-Request-Id",
        "description": "A correlation id for this request: 1 to 64 of "
        "`A-Z a-z 0-9 . _ -` are echoed back; anything else is replaced by a new one.",
        "schema": {"type": "string"},
    }),
    "IfNoneMatch": ("header", {
        "name": "If-None-Match",
        "description": "The `ETag` of an answer you have: while it is current, "
        "the answer is a 304 without a body.",
        "schema": {"type": "string"},
    }),
    "IdempotencyKey": ("header", {
        "name": "Idempotency-Key",
        "description": "1 to 255 printable ASCII characters that make a retried write "
        "act once: a repeat with the same key and the same request within 24 hours "
        "gets the first answer again. The same key with another request is a 422; "
        "while the first is still running, a 409.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[\x20-\x7E]+$"},
    }),
    "id": ("path", {
        "description": "The item's id (a UUID); any other text is a 404.",
        "schema": {"type": "string"},
    }),
}  # fmt: skip

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


# The list routes' query parameters come from their marshmallow schemas;
# these say what they mean.
QUERY_NOTES = {
    "limit": "Items per page.",
    "cursor": "Opaque: from the `Link` of the previous page.",
    "tag": "Only items with this tag.",
    "q": "A full-text search of the title (weighs most), description and body, with word "
    "forms (`bridges` finds `bridge`), read as a web search reads it: words, "
    '"quoted phrases", `or`, `-word`. Best match first, newest among equals, among the '
    "newest 1,000 matches (`SEARCH_MAX_MATCHES`); combines with the other filters. Only "
    "exclusions (`-bridge`) is a 422.",
    "from": f"Events whose `eventDate` is this or later; after `to`, a 400. {INPUT_DATE}",
    "to": f"Events whose `eventDate` is this or earlier; a date alone includes that whole "
    f"day. {INPUT_DATE}",
}
