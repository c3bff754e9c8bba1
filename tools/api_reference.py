"""``python -m tools.api_reference`` (``make reference``): docs/reference.md.

The route-by-route reference of the HTTP API, written from the gateway's
OpenAPI document (which each route describes itself: ``gateway/apidoc.py``),
so that it reads without a running gateway and never says other than the
code. ``tests/test_api_reference.py`` fails while the file is not current.
"""

import sys

from gateway.errors import ERRORS
from gateway.openapi import openapi_document
from gateway.service import GatewayService
from servicekit.config import ROOT

PATH = ROOT / "docs" / "reference.md"
HEADING = """\
# HTTP API reference

Every route of the gateway: what it answers, with which headers, and every
error it may give. Written by `make reference` from the OpenAPI document that
the routes describe themselves with (a running gateway serves it at
`GET /api/openapi.json` and shows it at `GET /api/docs`); the rules behind
it are explained in [the API guide](api.md). Every answer also carries
`X-Request-Id`, and any request may get `413` for a body over 1 MiB.
"""


def resolved(document, node):
    while "$ref" in node:
        _, _, kind, name = node["$ref"].split("/")
        node = document["components"][kind][name]
    return node


def what(document, answer):
    """An answer's JSON, named: a schema's name, a list of it, or the type."""
    content = resolved(document, answer).get("content", {})
    for media, body in content.items():
        if "error" in body.get("example", {}):  # the error JSON: its code
            return f"`{body['example']['error']}`"
        schema = body.get("schema", {})
        if "$ref" in schema:
            return f"`{schema['$ref'].rsplit('/', 1)[1]}`"
        if schema.get("type") == "array" and "$ref" in schema.get("items", {}):
            return f"array of `{schema['items']['$ref'].rsplit('/', 1)[1]}`"
        if "oneOf" in schema:
            return " or ".join(f"`{one['$ref'].rsplit('/', 1)[1]}`" for one in schema["oneOf"])
        return f"`{media}`"
    return ""


def operation_lines(document, path, method, op):
    lines = [f"## `{method.upper()} {path}`", "", f"{op['summary']}."]
    if op.get("description"):
        lines += ["", op["description"]]
    access = (
        "a token (`Authorization: Bearer <token>`)"
        if op["security"] == [{"bearerAuth": []}]
        else "anyone"
    )
    if op["security"] == [{}, {"bearerAuth": []}]:
        access = "anyone; a token may change the answer"
    lines += ["", f"- Access: {access}."]
    params = [resolved(document, p) for p in op.get("parameters", ())]
    shown = [f"`{p['name']}` ({p['in']})" for p in params if p["name"] != "X-Request-Id"]
    if shown:
        lines.append(f"- Parameters: {', '.join(shown)}.")
    if "requestBody" in op:
        body = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        lines.append(f"- Body: `{body}` (JSON).")
    lines += ["", "| status | answer | headers |", "| --- | --- | --- |"]
    for status, answer in op["responses"].items():
        answer = resolved(document, answer)
        headers = ", ".join(f"`{h}`" for h in answer.get("headers", {}) if h != "X-Request-Id")
        text = answer["description"].replace("|", "\\|").replace("\n", " ")
        shape = what(document, answer)
        if shape.startswith("`") and shape.isupper():  # an error's code first
            lines.append(f"| {status} | {shape}: {text} | {headers} |")
        else:
            lines.append(f"| {status} | {text}{' ' + shape if shape else ''} | {headers} |")
    return [*lines, ""]


def error_table():
    rows = [f"| {kind.status} | `{code}` | {kind.when} |" for code, kind in ERRORS.items()]
    return [
        "## Errors",
        "",
        'Every answer that is neither a 2xx nor a 304 is `{"error", "message", "details"}`;',
        "`error` is one of:",
        "",
        "| status | `error` | when |",
        "| --- | --- | --- |",
        *rows,
        "",
    ]


def reference():
    document = openapi_document("http://localhost:8000", GatewayService)
    lines = [HEADING, *error_table()]
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method != "parameters":
                lines += operation_lines(document, path, method, op)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    PATH.write_text(reference())
    print(f"wrote {PATH.relative_to(ROOT)}", file=sys.stderr)
