"""The OpenAPI 3 document of the gateway (filled in with the routes)."""


def openapi_document():
    return {
        "openapi": "3.0.3",
        "info": {"title": "Local News API", "version": "1.0.0"},
        "paths": {},
    }
