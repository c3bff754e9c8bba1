"""The OpenAPI 3 document of the gateway: every route of CONTRACT §3.

Built from small helpers, so that the three resources (users, articles,
events) share one description of listing, ids, errors and access, and differ
only in their fields and rules. ``gateway/tests/test_openapi.py`` checks that
every route the gateway serves is described here, and nothing else.
"""

from functools import cache

from servicekit.pagination import DEFAULT_LIMIT, MAX_LIMIT

ERRORS = {
    400: ("BadRequest", "Malformed JSON, a body that is not an object, or a bad query parameter."),
    401: ("Unauthorized", "No token, a malformed Authorization header, or a bad/expired token."),
    403: ("Forbidden", "A valid token without the right."),
    404: ("NotFound", "Unknown or malformed id."),
    409: ("Conflict", "Duplicate email address."),
    413: ("PayloadTooLarge", "The body is over 1 MiB."),
    422: ("ValidationError", "A field breaks a rule; `details` maps each field to its messages."),
    429: ("TooManyRequests", "Too many failed logins; retry after `Retry-After` seconds."),
    503: ("ServiceUnavailable", "A service that the request needs is not running."),
    504: ("GatewayTimeout", "A service did not answer within RPC_TIMEOUT_SECONDS."),
}
# Every route that calls a service may meet these.
SERVICE_ERRORS = (503, 504)


def ref(kind, name):
    return {"$ref": f"#/components/{kind}/{name}"}


def schema_ref(name):
    return ref("schemas", name)


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


def read_only(schema):
    return {**schema, "readOnly": True}


def json_body(schema):
    return {"content": {"application/json": {"schema": schema}}}


def response(description, schema=None, headers=None):
    answer = {"description": description}
    if schema is not None:
        answer.update(json_body(schema))
    if headers:
        answer["headers"] = headers
    return answer


def operation(summary, answers, *errors, params=(), body=None, secured=False, tag=None):
    """One operation: ``answers`` maps statuses to responses; ``errors`` are
    statuses answered with the contract's error JSON."""
    op = {
        "summary": summary,
        "tags": [tag],
        "responses": {
            **{str(code): answer for code, answer in answers.items()},
            **{str(code): ref("responses", ERRORS[code][0]) for code in sorted(set(errors))},
        },
    }
    if params:
        op["parameters"] = [ref("parameters", name) for name in params]
    if body:
        op["requestBody"] = {"required": True, **json_body(schema_ref(body))}
    if secured:
        op["security"] = [{"bearerAuth": []}]
    return op


def resource_paths(plural, schema, *, filters=(), access, create_errors=()):
    """The five routes of a resource; ``access`` describes who may write."""
    tag = plural.capitalize()
    base = f"/api/{plural}"
    write = (400, 401, 403, 413, 422, *create_errors, *SERVICE_ERRORS)
    link = {"Link": {"description": 'The next page: `<url>; rel="next"`.', "schema": string()}}
    location = {"Location": {"description": "The path of the new item.", "schema": string()}}
    one = response(f"The {schema}.", schema_ref(schema))
    return {
        base: {
            "get": operation(
                f"List {plural}, newest first (public)",
                {200: response(f"One page of {plural}.", array(schema_ref(schema)), link)},
                400,
                *SERVICE_ERRORS,
                params=("limit", "cursor", *filters),
                tag=tag,
            ),
            "post": operation(
                f"Create a {schema.lower()} ({access['create']})",
                {201: response(f"The stored {schema.lower()}.", schema_ref(schema), location)},
                *write,
                body=schema,
                secured=True,
                tag=tag,
            ),
        },
        f"{base}/{{id}}": {
            "parameters": [ref("parameters", "id")],
            "get": operation(
                f"Get a {schema.lower()} (public)", {200: one}, 404, *SERVICE_ERRORS, tag=tag
            ),
            "put": operation(
                f"Change the fields sent ({access['update']})",
                {200: one},
                404,
                *write,
                body=f"{schema}Update",
                secured=True,
                tag=tag,
            ),
            "delete": operation(
                f"Delete a {schema.lower()} ({access['delete']}); returns it",
                {200: one},
                401,
                403,
                404,
                *SERVICE_ERRORS,
                secured=True,
                tag=tag,
            ),
        },
    }


def writable(name, properties, required):
    """``name`` (create and answers) and ``nameUpdate`` (PUT: every field optional)."""
    return {name: obj(properties, required), f"{name}Update": obj(properties)}


def news_item(counter, **extra):
    """Article and Event: the shared news item fields plus their own."""
    properties = {
        "id": read_only(string(format="uuid")),
        "authorUID": string(
            minLength=1, maxLength=64, description="Defaults to the caller; admin-only otherwise."
        ),
        "title": string(minLength=1, maxLength=200),
        "description": string(maxLength=2000),
        "body": string(),
        "status": integer(format="int32", default=0),
        "tags": array(string(maxLength=200), maxItems=100, default=[]),
        "imagesUID": array(string(maxLength=200), maxItems=100, default=[]),
        "meta": obj(
            {counter: integer(minimum=0, format="int32")},
            description="Ignored on create; may be set on update.",
        ),
        "createdDate": read_only(string(format="date-time")),
        "updatedDate": read_only(string(format="date-time")),
        **extra,
    }
    return properties, ["title", "description", "body", *extra]


def query_param(name, schema, description):
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def components():
    article, article_required = news_item("likes")
    event, event_required = news_item(
        "attending", eventDate=string(format="date-time", description="ISO 8601; UTC if no offset.")
    )
    name = string(minLength=1, maxLength=100)
    user = {
        "id": read_only(string(format="uuid")),
        "firstName": name,
        "lastName": name,
        "emailAddress": string(
            format="email", description="Shown only to an admin or the user itself."
        ),
        "description": string(maxLength=2000),
        "role": string(enum=["regular", "admin"], default="regular", description="Admin-only."),
        "tags": array(string(maxLength=200), maxItems=100),
        "imagesUID": array(string(maxLength=200), maxItems=100),
        "meta": read_only(obj({"likes": integer(minimum=0)})),
        "createdDate": read_only(string(format="date-time")),
        "updatedDate": read_only(string(format="date-time")),
        "password": string(minLength=8, maxLength=256, writeOnly=True),
    }
    error = obj(
        {"error": string(), "message": string(), "details": obj({}, additionalProperties=True)},
        ["error", "message"],
    )
    login_failure = {
        "allOf": [error, obj({"auth": {"type": "boolean"}, "token": {"nullable": True}})]
    }
    return {
        "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        },
        "parameters": {
            "id": {"name": "id", "in": "path", "required": True, "schema": string()},
            "limit": query_param(
                "limit",
                integer(minimum=1, maximum=MAX_LIMIT, default=DEFAULT_LIMIT),
                "Items per page.",
            ),
            "cursor": query_param("cursor", string(), "Opaque; from the `Link` of the last page."),
            "tag": query_param(
                "tag", string(minLength=1, maxLength=200), "Only items with this tag."
            ),
            "from": query_param(
                "from", string(format="date-time"), "Events on or after (a date: from its start)."
            ),
            "to": query_param(
                "to", string(format="date-time"), "Events on or before (a date: its whole day)."
            ),
        },
        "schemas": {
            **writable("Article", article, article_required),
            **writable("Event", event, event_required),
            **writable("User", user, ["firstName", "lastName", "emailAddress", "password"]),
            "Error": error,
            "Login": obj(
                {"emailAddress": string(format="email"), "password": string()},
                ["emailAddress", "password"],
            ),
            "LoginResult": obj(
                {"auth": {"type": "boolean"}, "token": string(), "expiresIn": integer()},
                ["auth", "token", "expiresIn"],
            ),
            "LoginFailure": login_failure,
            "Health": obj(
                {
                    "status": string(enum=["ok", "degraded"]),
                    "services": obj({}, additionalProperties=string()),
                },
                ["status", "services"],
            ),
        },
        "responses": {
            code_name: response(description, schema_ref("Error"))
            for code_name, description in ERRORS.values()
        },
    }


def paths():
    content_access = {"create": "token", "update": "author or admin", "delete": "author or admin"}
    health = schema_ref("Health")
    retry_after = {"Retry-After": {"description": "Seconds to wait.", "schema": integer()}}
    return {
        "/health": {
            "get": operation(
                "Health of every service (public)",
                {
                    200: response("Every service answers.", health),
                    503: response("A service does not answer.", health),
                },
                tag="Operations",
            )
        },
        "/api/openapi.json": {
            "get": operation(
                "This document (public)",
                {200: response("The OpenAPI 3 document.", {"type": "object"})},
                tag="Operations",
            )
        },
        "/api/auth": {
            "post": operation(
                "Log in (public)",
                {
                    200: response("A token.", schema_ref("LoginResult")),
                    401: response("Wrong email or password.", schema_ref("LoginFailure")),
                    429: response(ERRORS[429][1], schema_ref("Error"), retry_after),
                },
                400,
                413,
                *SERVICE_ERRORS,
                body="Login",
                tag="Auth",
            )
        },
        **resource_paths(
            "users",
            "User",
            access={"create": "admin", "update": "admin or the user itself", "delete": "admin"},
            create_errors=(409,),
        ),
        **resource_paths("articles", "Article", filters=("tag",), access=content_access),
        **resource_paths("events", "Event", filters=("tag", "from", "to"), access=content_access),
    }


@cache
def openapi_document():
    """Built once; callers must not change it."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Local News API",
            "version": "1.0.0",
            "description": "Articles, local events and users. Every error is "
            '`{"error": CODE, "message": text, "details": {...}}`.',
        },
        "paths": paths(),
        "components": components(),
    }
