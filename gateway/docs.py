"""``GET /api/docs``: a page that shows the OpenAPI document (Swagger UI).

Every file of the page is served from here: Swagger UI's own dist files, as
the pinned ``swagger-ui-bundle-v2`` package ships them, and a small script
of ours that starts it on ``/api/openapi.json``. Nothing is fetched from
anywhere else, and the page has no inline script or style, so its
Content-Security-Policy allows exactly its own files from this origin.

File names carry a digest of their content: a browser may keep them a year,
and a new Swagger UI comes under new names. The page itself is revalidated
(``ETag``) like every GET.
"""

import hashlib
from functools import cache
from typing import NamedTuple

from swagger_ui_bundle import swagger_ui_path
from werkzeug.wrappers import Response

from servicekit.errors import NotFound

from .apidoc import Answer, Doc, Param
from .cache import etag_of
from .http import http

# Swagger UI draws its icons from data: URIs in its CSS; it fetches the
# document (and, with "Try it out", the API) from this origin.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"
CONTENT_TYPES = {
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "png": "image/png",
}
# Swagger UI's files that the page uses (of its package's dist folder).
SWAGGER_UI_FILES = (
    "swagger-ui-bundle.js",
    "swagger-ui.css",
    "index.css",
    "favicon-32x32.png",
    "favicon-16x16.png",
)
# Ours: start Swagger UI on the document, without its "validator" badge
# (which would ask a server elsewhere) and without its URL bar.
BOOT_SCRIPT = b"""\
"use strict";
window.ui = SwaggerUIBundle({
  url: "/api/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
"""
PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Local News API</title>
<link rel="stylesheet" href="{swagger-ui.css}">
<link rel="stylesheet" href="{index.css}">
<link rel="icon" type="image/png" sizes="32x32" href="{favicon-32x32.png}">
<link rel="icon" type="image/png" sizes="16x16" href="{favicon-16x16.png}">
</head>
<body>
<noscript>This page needs JavaScript. The API's OpenAPI document is at
<a href="/api/openapi.json">/api/openapi.json</a>.</noscript>
<div id="swagger-ui"></div>
<script src="{swagger-ui-bundle.js}"></script>
<script src="{docs.js}"></script>
</body>
</html>
"""
ASSETS_PATH = "/api/docs/"


class Asset(NamedTuple):
    body: bytes
    content_type: str
    etag: str


def served_name(name, body):
    """``swagger-ui.css`` as ``swagger-ui.<digest>.css``."""
    stem, _, extension = name.rpartition(".")
    return f"{stem}.{hashlib.sha256(body).hexdigest()[:16]}.{extension}"


@cache
def assets():
    """The page's files, read once: ``{file: (name served under, Asset)}``."""
    files = {name: (swagger_ui_path / name).read_bytes() for name in SWAGGER_UI_FILES}
    files["docs.js"] = BOOT_SCRIPT
    return {
        name: (
            served_name(name, body),
            Asset(body, CONTENT_TYPES[name.rpartition(".")[2]], etag_of(body)),
        )
        for name, body in files.items()
    }


@cache
def served_assets():
    """``{name served under: Asset}``: nothing else is served."""
    return dict(assets().values())


@cache
def page():
    html = PAGE
    for name, (served, _) in assets().items():
        html = html.replace("{" + name + "}", ASSETS_PATH + served)
    return html.encode()


ASSET = Param(
    "asset",
    "path",
    {"description": "A file that the docs page names.", "schema": {"type": "string"}},
)
TEXT = {"schema": {"type": "string"}}


class DocsRoutes:
    @http(
        "GET",
        "/api/docs",
        doc=Doc(
            "The API documentation page",
            "Documentation",
            {
                200: Answer(
                    "An HTML page showing this document (Swagger UI), every file of it "
                    "served from here.",
                    content={"text/html": TEXT},
                    headers=("ETag", "Cache-Control", "Content-Security-Policy"),
                )
            },
        ),
    )
    def docs(self, request):
        return Response(
            page(),
            content_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": PAGE_POLICY},
        )

    @http(
        "GET",
        "/api/docs/<asset>",
        doc=Doc(
            "A file of the documentation page",
            "Documentation",
            {
                200: Answer(
                    "The file.",
                    content={
                        "text/javascript": TEXT,
                        "text/css": TEXT,
                        "image/png": {"schema": {"type": "string", "format": "binary"}},
                    },
                    headers=("ETag", "Cache-Control"),
                )
            },
            ((404, "No such file."),),
            params=(ASSET,),
        ),
    )
    def docs_asset(self, request, asset):
        found = served_assets().get(asset)
        if found is None:
            raise NotFound("No such file of the documentation page.", {"asset": ["Unknown."]})
        return Response(
            found.body,
            content_type=found.content_type,
            headers={"Cache-Control": ASSET_CACHE_CONTROL, "ETag": found.etag},
        )
