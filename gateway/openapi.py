"""The OpenAPI 3 document of the gateway (``GET /api/openapi.json``), assembled.

Every route describes itself where it is served (its ``doc=``, see
:mod:`gateway.apidoc`); this module only puts the descriptions together:
operations named after the routes' methods, the components their answers
and bodies name, the error answers from :data:`gateway.errors.ERRORS`, and
the schemas of bodies, answers and list queries from the marshmallow schemas
the services validate with (apispec's MarshmallowPlugin), so that the
document cannot drift from the code. ``gateway/tests/test_openapi.py`` checks
that every served route is described and nothing else, that the document is
valid OpenAPI, and that it agrees with the marshmallow schemas.
"""

import inspect
import re
from functools import cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from news.schemas import UTCDate
from servicekit.schemas import UTCDateTime

from . import apidoc
from .apidoc import OneOf, Schema, View
from .errors import CODE_BY_STATUS, ERRORS

OPENAPI_VERSION = "3.0.3"
# The project has no license file: nothing is granted, which this page explains.
LICENSE = {
    "name": "No license: all rights reserved",
    "url": "https://choosealicense.com/no-permission/",
}
INTRODUCTION = """\
Articles, local events and users of the Local News application.

**Errors.** Every answer that is neither a 2xx nor a 304 is JSON of one
shape, `{"error": CODE, "message": text, "details": {...}}`, where `details`
maps a field (or `body`, or a header's name) to a list of messages, or holds
other JSON, or is `{}`:

| status | `error` | when |
| --- | --- | --- |
"""


def description():
    rows = [f"| {kind.status} | `{code}` | {kind.when} |" for code, kind in ERRORS.items()]
    return INTRODUCTION + "\n".join(rows) + "\n\n" + apidoc.CONVENTIONS


def error_answer(status, text=None):
    """The error JSON of ``status``, with ``text`` where a route says more."""
    code = CODE_BY_STATUS[status]
    text = text or ERRORS[code].when
    answer = response(apidoc.Answer(text, apidoc.ERROR))
    answer["content"]["application/json"]["example"] = {
        "error": code,
        "message": text.split(";")[0],
        "details": {},
    }
    if status == 429:
        answer["headers"]["Retry-After"] = "RetryAfter"
    return answer


def schema_of(schema):
    """A reference to a component (a View, a Schema), or inline JSON Schema."""
    if isinstance(schema, View | Schema):
        return {"$ref": f"#/components/schemas/{schema.name}"}
    if isinstance(schema, list):  # an array of one kind
        return {"type": "array", "items": schema_of(schema[0])}
    if isinstance(schema, OneOf):
        return {
            "oneOf": [schema_of(view) for view in schema.views],
            "description": schema.description,
        }
    return schema


def response(answer):
    shown = {"description": answer.description}
    if answer.schema is not None:
        shown["content"] = {"application/json": {"schema": schema_of(answer.schema)}}
    elif answer.content is not None:
        shown["content"] = answer.content
    names = ("X-Request-Id", *answer.headers)
    # Components by name: apispec refers to them, and adds those used.
    shown["headers"] = {name: apidoc.HEADERS[name][0] for name in names}
    return shown


def operation(name, route, doc, spec, converter):
    """The operation of one route (its method ``name``)."""
    read = route.method == "GET" and doc.conditional
    idempotent = route.changes is not None
    responses = {str(status): response(answer) for status, answer in doc.answers.items()}
    if read:
        responses["304"] = "NotModified"
    for item in (*doc.errors, 413):
        status, text = item if isinstance(item, tuple) else (item, None)
        component = ERRORS[CODE_BY_STATUS[status]].component
        responses[str(status)] = error_answer(status, text) if text else component
    op = {"operationId": name, "summary": doc.summary, "tags": [doc.tag]}
    if doc.description:
        op["description"] = doc.description
    query = query_parameters(spec, converter, doc.query) if doc.query else []
    own = [param for param in doc.params if isinstance(param, apidoc.Param)]
    for param in own:
        if param.name not in spec.components.parameters_lazy:
            spec.components.parameter(param.name, param.location, param.spec, lazy=True)
    op["parameters"] = [
        *query,
        *(
            getattr(param, "name", param)
            for param in doc.params
            if getattr(param, "location", "") != "path"
        ),
        *(["IfNoneMatch"] if read else []),
        *(["IdempotencyKey"] if idempotent else []),
        "RequestId",
    ]
    if doc.body:
        op["requestBody"] = {
            "required": True,
            "description": "JSON (`application/json` or any `*/*+json` type).",
            "content": {"application/json": {"schema": schema_of(doc.body)}},
        }
    op["responses"] = dict(sorted(responses.items()))
    op["security"] = doc.access.security
    return op


# --- schemas from marshmallow -------------------------------------------------


def dates_and_defaults(converter, field, ret, **kwargs):
    """apispec attribute function: dates as every answer writes them, and
    factory defaults (``load_default=list``) as their value."""
    extra = {}
    if isinstance(field, UTCDateTime | UTCDate):
        extra = {
            "type": "string",
            "format": "date-time",
            "description": "ISO 8601 in UTC, with `Z`.",
            "example": "2026-12-05T07:00:00.000000Z",
        }
    if callable(field.load_default) and "default" not in ret:
        extra["default"] = field._serialize(field.load_default(), None, None)
    return extra


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
        for name, f in instance.load_fields.items():
            if isinstance(f, UTCDate):
                properties[f.data_key or name] = apidoc.input_date()
    for name, note in view.notes:
        properties[name].update({"description": note} if isinstance(note, str) else note)
    for name, note in view.ignored:
        properties[name] = {"description": note}


def query_parameters(spec, converter, schema):
    """Parameter components for the fields of a list's schema; their names."""
    instance = schema()
    fields = {f.data_key or name: f for name, f in instance.load_fields.items()}
    names = []
    for param in converter.schema2parameters(instance, location="query"):
        name = param["name"]
        if isinstance(fields[name], UTCDate):
            param["schema"] = apidoc.input_date()
        param["schema"].pop("nullable", None)  # a query parameter is absent, never null
        if "default" in param["schema"] and param["schema"]["default"] is None:
            del param["schema"]["default"]
        param["description"] = apidoc.QUERY_NOTES[name]
        known = spec.components.parameters.get(name) or spec.components.parameters_lazy.get(name)
        if known is None:
            spec.components.parameter(name, "query", param, lazy=True)
        elif known != param:
            raise ValueError(f"The query parameter {name!r} differs between lists.")
        names.append(name)
    return names


def components_named(docs):
    """Every View and Schema that the routes' answers and bodies name."""
    found = {}

    def visit(schema):
        if isinstance(schema, list):
            visit(schema[0])
        elif isinstance(schema, OneOf):
            for view in schema.views:
                visit(view)
        elif isinstance(schema, View | Schema):
            found.setdefault(schema.name, schema)

    for doc in docs:
        visit(doc.body)
        for answer in doc.answers.values():
            visit(answer.schema)
    return found.values()


# --- the document ---------------------------------------------------------------


def documented_routes(service_cls):
    """``(path, method, name, route)`` of every ``@http`` route of the service."""
    for name, method in inspect.getmembers(service_cls, inspect.isfunction):
        for route in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if getattr(route, "doc", None) is not None:
                yield openapi_path(route.url), route.method.lower(), name, route


def openapi_path(url):
    """``/api/articles/<article_id>`` as ``/api/articles/{id}``."""
    return re.sub(
        r"<(?:\w+:)?(\w+)>", lambda m: "{id}" if m[1].endswith("_id") else f"{{{m[1]}}}", url
    )


@cache
def openapi_document(server_url, service_cls):
    """The document of ``service_cls``'s routes, for a gateway reached at
    ``server_url`` (PUBLIC_BASE_URL). Built once per URL; callers must not
    change it."""
    plugin = MarshmallowPlugin(schema_name_resolver=lambda schema: None)  # nested: inline
    spec = APISpec(
        title="Local News API", version="1.0.0", openapi_version=OPENAPI_VERSION, plugins=[plugin]
    )
    plugin.converter.add_attribute_function(dates_and_defaults)
    spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    for component, header in apidoc.HEADERS.values():
        spec.components.header(component, header, lazy=True)
    for name, (location, parameter) in apidoc.PARAMETERS.items():
        spec.components.parameter(name, location, parameter, lazy=True)
    not_modified = apidoc.Answer(apidoc.NOT_MODIFIED, headers=("ETag", "Cache-Control"))
    spec.components.response("NotModified", response(not_modified), lazy=True)
    for code, kind in ERRORS.items():
        if CODE_BY_STATUS[kind.status] == code and kind.status not in (405, 500):
            spec.components.response(kind.component, error_answer(kind.status), lazy=True)
    routes = sorted(documented_routes(service_cls))
    for component in (apidoc.ERROR, *components_named(route.doc for *_, route in routes)):
        if isinstance(component, View):
            add_view(spec, component)
        else:
            spec.components.schema(component.name, component.schema)
    paths = {}
    for path, method, name, route in routes:
        paths.setdefault(path, {})[method] = operation(
            name, route, route.doc, spec, plugin.converter
        )
    for path, item in paths.items():
        in_path = re.findall(r"\{(\w+)\}", path) or None  # components of their own names
        spec.path(path, parameters=in_path, operations=item)
    generated = spec.to_dict()
    return {
        "openapi": OPENAPI_VERSION,
        "info": {**generated["info"], "description": description(), "license": LICENSE},
        "servers": [{"url": server_url.rstrip("/") or "/", "description": "This deployment."}],
        "tags": apidoc.TAGS,
        "paths": generated["paths"],
        "components": generated["components"],
    }
