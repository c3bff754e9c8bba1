"""The OpenAPI document describes exactly the routes the gateway serves."""

import inspect
import re

from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.web.handlers import HttpRequestHandler

from gateway.openapi import openapi_document
from gateway.service import GatewayService


def _shape(path):
    """``/api/users/<user_id>`` and ``/api/users/{id}`` alike: ``/api/users/{}``."""
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def served_routes():
    """(METHOD, path) of every ``@http`` entrypoint: what the url map is built from."""
    routes = set()
    for _, method in inspect.getmembers(GatewayService, inspect.isfunction):
        for entrypoint in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, HttpRequestHandler):
                routes.add((entrypoint.method, _shape(entrypoint.url)))
    return routes


def documented_routes(document):
    return {
        (method.upper(), _shape(path))
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }


def _refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_served_route_is_documented_and_nothing_else():
    served = served_routes()
    assert len(served) == 18  # five routes of each resource, login, health, this document
    assert documented_routes(openapi_document()) == served


def test_document_is_self_consistent():
    document = openapi_document()
    components = document["components"]
    for ref in set(_refs(document)):
        _, _, kind, name = ref.split("/")
        assert name in components[kind], ref
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            assert op["responses"], (method, path)
            changes = method in ("post", "put", "delete") and path != "/api/auth"
            assert ("security" in op) == changes, (method, path)
    list_events = document["paths"]["/api/events"]["get"]["parameters"]
    assert [p["$ref"].rsplit("/", 1)[1] for p in list_events] == [
        "limit",
        "cursor",
        "tag",
        "from",
        "to",
    ]
    assert components["securitySchemes"]["bearerAuth"]["bearerFormat"] == "JWT"
    assert {"User", "Article", "Event", "Error", "Login"} <= set(components["schemas"])
