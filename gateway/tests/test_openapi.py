"""The OpenAPI document: exactly the served routes, valid, and in step with
the marshmallow schemas the services validate with."""

import copy
import inspect
import json
import re
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from marshmallow import fields, missing, validate
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.web.handlers import HttpRequestHandler
from openapi_spec_validator import validate as validate_spec

from auth.schemas import LoginSchema
from gateway.openapi import openapi_document
from gateway.service import GatewayService
from gateway.users import shown_to
from news.items import NewsItems
from news.schemas import (
    ArticleSchema,
    EventListQuerySchema,
    EventSchema,
    NewsListQuerySchema,
    UTCDate,
)
from servicekit.pagination import PageQuerySchema
from servicekit.schemas import UTCDateTime
from users.schemas import UserSchema

SERVER = "http://localhost:8000"
ANSWER, BODY, CHANGE, QUERY = "answer", "body", "change", "query"

# Each documented schema: the marshmallow schema behind it, how it is shown
# (what routes answer, a body to create, a change where nothing is
# required), the fields left out, and required fields that the gateway
# fills in itself (authorUID: the caller).
# name: (schema, kind, fields left out, fields the gateway fills in, fields ignored)
IGNORED_ON_CREATE = NewsItems.update_only_fields
VIEWS = {
    "Article": (ArticleSchema, ANSWER, (), (), ()),
    "NewArticle": (ArticleSchema, BODY, (), ("authorUID",), IGNORED_ON_CREATE),
    "ArticleUpdate": (ArticleSchema, CHANGE, (), (), ()),
    "Event": (EventSchema, ANSWER, (), (), ()),
    "NewEvent": (EventSchema, BODY, (), ("authorUID",), IGNORED_ON_CREATE),
    "EventUpdate": (EventSchema, CHANGE, (), (), ()),
    "User": (UserSchema, ANSWER, (), (), ()),
    "PublicUser": (UserSchema, ANSWER, ("emailAddress",), (), ()),
    "NewUser": (UserSchema, BODY, (), (), ()),
    "UserUpdate": (UserSchema, CHANGE, (), (), ()),
    "Login": (LoginSchema, BODY, (), (), ()),
}
LIST_QUERIES = {
    "/api/articles": NewsListQuerySchema,
    "/api/events": EventListQuerySchema,
    "/api/users": PageQuerySchema,
}


@pytest.fixture(scope="module")
def document():
    return openapi_document(SERVER, GatewayService)


def _shape(path):
    """``/api/users/<user_id>`` and ``/api/users/{id}`` alike: ``/api/users/{}``."""
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def served_routes():
    """(METHOD, path) of every ``@http`` entrypoint, with the method's name."""
    routes = {}
    for name, method in inspect.getmembers(GatewayService, inspect.isfunction):
        for entrypoint in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, HttpRequestHandler):
                routes[(entrypoint.method, _shape(entrypoint.url))] = name
    return routes


def operations(document):
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method != "parameters":
                yield path, method, op


def resolve(document, node):
    while "$ref" in node:
        _, _, kind, name = node["$ref"].split("/")
        node = document["components"][kind][name]
    return node


def parameters(document, path, op):
    item = document["paths"][path]
    return [resolve(document, p) for p in (*item.get("parameters", ()), *op["parameters"])]


def _refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


# --- routes and operations ----------------------------------------------------


def test_every_served_route_is_documented_and_nothing_else(document):
    served = served_routes()
    # five routes of each resource, login, health, this document, the docs page and its
    # files, the live feed
    assert len(served) == 21
    documented = {(method.upper(), _shape(path)) for path, method, _ in operations(document)}
    assert documented == set(served)


def test_operation_ids_are_the_gateway_methods_that_serve_them(document):
    served = served_routes()
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))
    for path, method, op in operations(document):
        assert op["operationId"] == served[(method.upper(), _shape(path))]


def test_document_is_valid_openapi(document):
    validate_spec(document)  # raises on any error
    assert document["openapi"].startswith("3.0.")
    assert json.loads(json.dumps(document)) == document  # plain JSON: no tuples, no objects


def test_servers_follow_the_configured_public_url():
    assert (
        openapi_document("https://news.test/", GatewayService)["servers"][0]["url"]
        == "https://news.test"
    )
    assert openapi_document(SERVER, GatewayService) is openapi_document(
        SERVER, GatewayService
    )  # built once


def test_every_operation_is_complete(document):
    tags = {tag["name"] for tag in document["tags"]}
    for path, method, op in operations(document):
        where = (method, path)
        assert op["summary"] and set(op["tags"]) <= tags, where
        statuses = set(op["responses"])
        assert any(s.startswith("4") for s in statuses), where
        names = {p["name"] for p in parameters(document, path, op)}
        assert "X-Request-Id" in names, where
        for status, answer in op["responses"].items():
            assert "X-Request-Id" in resolve(document, answer)["headers"], (where, status)
        if method == "get" and path != "/api/feed":  # a stream is never the same answer
            assert "304" in statuses and "If-None-Match" in names, where
            assert {"ETag", "Cache-Control"} <= set(
                resolve(document, op["responses"]["200"])["headers"]
            )
        if path.startswith(("/api/articles", "/api/events", "/api/users")) and method != "get":
            assert op["security"] == [{"bearerAuth": []}], where
            assert "Idempotency-Key" in names, where
            assert {"400", "401", "409", "413", "415", "422", "503", "504"} <= statuses, where
        elif path.startswith("/api/users"):
            assert op["security"] == [{}, {"bearerAuth": []}], where  # a token shows more
        else:
            assert op["security"] == [], where


def test_writes_answer_with_their_headers_and_errors(document):
    for plural in ("articles", "events", "users"):
        created = document["paths"][f"/api/{plural}"]["post"]["responses"]["201"]
        assert "Location" in created["headers"]
        listed = document["paths"][f"/api/{plural}"]["get"]["responses"]["200"]
        assert "Link" in listed["headers"]
    login = document["paths"]["/api/auth"]["post"]["responses"]
    assert set(login) == {"200", "400", "401", "413", "415", "422", "429", "503", "504"}
    assert login["401"]["content"]["application/json"]["schema"]["$ref"].endswith("LoginFailure")
    assert "Retry-After" in resolve(document, login["429"])["headers"]
    failure = document["components"]["schemas"]["LoginFailure"]["properties"]["token"]
    assert failure == {"type": "string", "nullable": True, "description": "Always `null`."}


def test_every_reference_resolves_and_every_component_is_used(document):
    components = document["components"]
    used = set(_refs(document["paths"]))
    pending = set(used)
    while pending:
        _, _, kind, name = pending.pop().split("/")
        assert name in components[kind]
        more = set(_refs(components[kind][name])) - used
        used |= more
        pending |= more
    defined = {
        f"#/components/{kind}/{name}"
        for kind, items in components.items()
        if kind != "securitySchemes"
        for name in items
    }
    assert defined == used


def test_nullable_only_with_a_type(document):
    def walk(node):
        if isinstance(node, dict):
            if node.get("nullable"):
                assert "type" in node, node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)


# --- in step with marshmallow -------------------------------------------------


def _wire(fields_by_name):
    return {field.data_key or name: field for name, field in fields_by_name.items()}


def _limits(field, prop, where):
    """What a field's validators say, as the document must say it."""
    problems = []
    want = {}
    for validator in field.validators:
        if isinstance(validator, validate.Length):
            low, high = (
                ("minItems", "maxItems")
                if isinstance(field, fields.List)
                else ("minLength", "maxLength")
            )
            want[low], want[high] = validator.min, validator.max
        elif isinstance(validator, validate.Range):
            want["minimum"], want["maximum"] = validator.min, validator.max
        elif isinstance(validator, validate.OneOf):
            want["enum"] = list(validator.choices)
    for key in ("minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum", "enum"):
        if prop.get(key) != want.get(key):
            problems.append(
                f"{where}: {key} is {prop.get(key)!r}, the schema says {want.get(key)!r}"
            )
    return problems


# What UTCDate loads and the document must let through: with an offset,
# without one (UTC), a date alone.
DATE_INPUTS = (
    "2026-12-05T08:00:00+01:00",
    "2026-12-05T08:00:00Z",
    "2026-12-05T08:00",
    "2026-12-05",
)


def field_problems(field, prop, kind, where):
    """How the documented property ``prop`` differs from ``field``."""
    problems = _limits(field, prop, where)
    if isinstance(field, UTCDate) and kind != ANSWER:
        pattern = re.compile(prop.get("pattern", "^$"))
        for sample in DATE_INPUTS:
            if not pattern.match(sample) or not field.deserialize(sample):
                problems.append(f"{where}: a date input must accept {sample!r}")
        return problems
    if isinstance(field, UTCDateTime | UTCDate):
        expected_type, expected_format = "string", "date-time"
    elif isinstance(field, fields.Email):
        expected_type, expected_format = "string", "email"
    elif isinstance(field, fields.UUID):
        expected_type, expected_format = "string", "uuid"
    elif isinstance(field, fields.String):
        expected_type, expected_format = "string", None
    elif isinstance(field, fields.Integer):
        expected_type, expected_format = "integer", None
    elif isinstance(field, fields.List):
        expected_type, expected_format = "array", None
        problems += field_problems(field.inner, prop.get("items", {}), kind, f"{where}[]")
    elif isinstance(field, fields.Nested):
        expected_type, expected_format = "object", None
        nested = _wire(field.schema.fields)
        if set(prop.get("properties", {})) != set(nested):
            problems.append(f"{where}: properties differ from the nested schema's")
        for name, inner in nested.items():
            if name in prop.get("properties", {}):
                problems += field_problems(inner, prop["properties"][name], kind, f"{where}.{name}")
    else:  # fields.Function and the like: only the name is the schema's
        expected_type, expected_format = prop.get("type"), prop.get("format")
    if (prop.get("type"), prop.get("format")) != (expected_type, expected_format):
        problems.append(f"{where}: type {prop.get('type')}/{prop.get('format')}")
    if prop.get("readOnly", False) != field.dump_only:
        problems.append(f"{where}: readOnly is not the schema's dump_only")
    if prop.get("writeOnly", False) != field.load_only:
        problems.append(f"{where}: writeOnly is not the schema's load_only")
    if kind in (BODY, QUERY) and not isinstance(field.parent, fields.List):
        default = field.load_default
        default = default() if callable(default) else default
        if default is not None and default != prop.get("default", default):
            problems.append(f"{where}: default {prop.get('default')!r}, the schema's {default!r}")
        if default not in (None, missing) and "default" not in prop:
            problems.append(f"{where}: the default {default!r} is not documented")
    return problems


def view_problems(document, name):
    """How the documented schema ``name`` differs from its marshmallow schema."""
    schema_cls, kind, left_out, filled_in, ignored = VIEWS[name]
    documented = document["components"]["schemas"][name]
    schema = schema_cls()
    wire = _wire(schema.dump_fields if kind == ANSWER else schema.load_fields)
    wire = {key: field for key, field in wire.items() if key not in left_out}
    if kind == ANSWER:
        required = set(wire)  # answers always carry every field
    elif kind == BODY:
        required = {key for key, field in wire.items() if field.required} - set(filled_in)
    else:
        required = set()
    problems = []
    if set(documented["properties"]) != set(wire):
        problems.append(f"{name}: properties {sorted(documented['properties'])} != {sorted(wire)}")
    if set(documented.get("required", ())) != required:
        problems.append(f"{name}: required {documented.get('required')} != {sorted(required)}")
    if kind == ANSWER and documented.get("additionalProperties") is not False:
        problems.append(f"{name}: an answer has no other fields")
    for key, field in wire.items():
        if key in ignored:  # taken as anything: the service drops it unread
            if set(documented["properties"].get(key, {})) - {"description"}:
                problems.append(f"{name}.{key}: ignored, so it takes any value")
        elif key in documented["properties"]:
            prop = documented["properties"][key]
            problems += field_problems(field, prop, kind, f"{name}.{key}")
    return problems


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_schema_agrees_with_marshmallow(document, name):
    assert view_problems(document, name) == []


def test_a_disagreement_is_noticed(document):
    changed = copy.deepcopy(document)
    user = changed["components"]["schemas"]["NewUser"]
    user["properties"]["password"]["minLength"] = 1
    del user["properties"]["description"]
    user["required"].remove("emailAddress")
    problems = view_problems(changed, "NewUser")
    assert len(problems) == 3, problems
    article = changed["components"]["schemas"]["Article"]
    article["properties"]["extra"] = {"type": "string"}
    assert view_problems(changed, "Article")


@pytest.mark.parametrize("path", sorted(LIST_QUERIES))
def test_list_query_parameters_are_the_list_schema(document, path):
    op = document["paths"][path]["get"]
    query = {p["name"]: p for p in parameters(document, path, op) if p["in"] == "query"}
    schema_fields = _wire(LIST_QUERIES[path]().load_fields)
    assert set(query) == set(schema_fields)
    for name, field in schema_fields.items():
        assert not query[name]["required"]
        assert field_problems(field, query[name]["schema"], QUERY, name) == []


def test_login_takes_any_text_as_email_address(document):
    login = document["components"]["schemas"]["Login"]["properties"]["emailAddress"]
    assert login == {"type": "string", "minLength": 1, "maxLength": 320}


def test_answers_are_what_the_services_dump(document):
    """A dumped item has exactly the documented properties; the users routes
    show ``User`` to an admin or the user itself and ``PublicUser`` to others."""
    now = datetime(2026, 12, 5, 8, tzinfo=UTC)
    item = {
        "id": uuid.uuid4(),
        "author_uid": "u1",
        "title": "t",
        "description": "d",
        "body": "b",
        "status": 0,
        "tags": [],
        "images_uid": [],
        "created_at": now,
        "updated_at": now,
        "likes": 0,
        "attending": 0,
        "event_date": now,
    }
    schemas = document["components"]["schemas"]
    assert set(ArticleSchema().dump(item)) == set(schemas["Article"]["properties"])
    assert set(EventSchema().dump(item)) == set(schemas["Event"]["properties"])
    user = SimpleNamespace(
        id=uuid.uuid4(),
        first_name="A",
        last_name="B",
        email_address="a@example.com",
        description="",
        role="regular",
        tags=[],
        images_uid=[],
        likes=0,
        created_at=now,
        updated_at=now,
    )
    dumped = UserSchema().dump(user)
    assert set(dumped) == set(schemas["User"]["properties"])
    anonymous = shown_to(None, dumped)
    assert set(anonymous) == set(schemas["PublicUser"]["properties"])
