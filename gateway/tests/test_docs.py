"""The documentation page through a running gateway: the page, every file it
names (all served from here), its security policy, and unknown files."""

import http.client
import json
import re

import pytest

from gateway.service import GatewayService
from servicekit.config import public_base_url

CONTENT_TYPES = {
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "png": "image/png",
}


@pytest.fixture
def gateway(config, container_factory):
    container = container_factory(GatewayService, config)  # no other service needed
    container.start()
    return container


def test_page_is_served_with_its_own_policy(gateway, web_session):
    page = web_session.get("/api/docs")
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in page.headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-cache"
    assert web_session.get("/api/docs/").text == page.text  # a trailing slash too
    again = web_session.get("/api/docs", headers={"If-None-Match": page.headers["ETag"]})
    assert again.status_code == 304


def test_page_names_only_its_own_files_and_each_is_served(gateway, web_session):
    html = web_session.get("/api/docs").text
    assert re.findall(r"<script>|<style|\sstyle=|\son\w+=", html) == []  # nothing inline
    scripts = re.findall(r'<script src="([^"]+)"></script>', html)
    links = re.findall(r'<link rel="(?:stylesheet|icon)"[^>]* href="([^"]+)"', html)
    assert len(scripts) == 2 and len(links) == 4
    every_reference = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sorted(every_reference) == sorted([*scripts, *links, "/api/openapi.json"])
    for reference in [*scripts, *links]:
        assert reference.startswith("/api/docs/"), reference  # this origin, no scheme or host
        answer = web_session.get(reference)
        assert answer.status_code == 200, reference
        assert answer.headers["Content-Type"] == CONTENT_TYPES[reference.rsplit(".", 1)[1]]
        assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert len(answer.content) > 100
        cached = web_session.get(reference, headers={"If-None-Match": answer.headers["ETag"]})
        assert cached.status_code == 304
    boot = web_session.get(scripts[1]).text
    assert 'url: "/api/openapi.json"' in boot and "validatorUrl: null" in boot
    assert "http" not in boot
    bundle = web_session.get(scripts[0]).text
    assert "SwaggerUIBundle" in bundle


def test_the_document_the_page_shows_names_the_configured_server(gateway, web_session, config):
    answer = web_session.get("/api/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    assert document["servers"] == [
        {"url": public_base_url(config), "description": "This deployment."}
    ]
    assert "/api/docs" in document["paths"]


def test_unknown_files_are_not_found_and_nothing_else_is_reachable(gateway, config):
    host, port = config["WEB_SERVER_ADDRESS"].split(":")
    for path in (
        "/api/docs/nothing.js",
        "/api/docs/swagger-ui-bundle.js",  # Swagger UI's own name, without the digest
        "/api/docs/swagger-ui-bundle.js.map",
        "/api/docs/..%2Fopenapi.py",
        "/api/docs/%2e%2e%2fservice.py",
        "/api/docs/..%5C__init__.py",
        "/api/docs/../docs.py",  # sent as is: no client resolves the dots
        "/api/docs/../../etc/passwd",
        "/api/docs/a/b.js",
    ):
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        connection.request("GET", path)
        answer = connection.getresponse()
        body = json.loads(answer.read())
        connection.close()
        assert answer.status == 404, path
        assert answer.getheader("Content-Type") == "application/json; charset=utf-8"
        assert body["error"] == "NOT_FOUND", path
        assert answer.getheader("Content-Security-Policy") == (
            "default-src 'none'; frame-ancestors 'none'"
        )
