"""Reading requests and shaping list responses, for every route."""

import json
from urllib.parse import urlencode

from servicekit.errors import BadRequest

from .errors import json_response


def read_json(request):
    """The body as a JSON object; anything else is a 400 that says why."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise BadRequest("The request needs a JSON object body.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Malformed JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    return body


def list_params(request, *names):
    """Query parameters to pass on; each may appear once."""
    params = {}
    for name in ("limit", "cursor", *names):
        values = request.args.getlist(name)
        if len(values) > 1:
            raise BadRequest(f"Give '{name}' once.", {name: ["Repeated parameter."]})
        if values:
            params[name] = values[0]
    return params


def page_response(request, page, params, items=None):
    """200 with the page's items (or ``items``, as shown to the caller) and,
    when there is more, ``Link: <next>; rel="next"``.

    The link is relative to the request (RFC 8288): the same answer serves
    every host name, and a client's ``Host`` header never ends up in a cached
    answer that other clients get.
    """
    headers = {}
    if page.get("nextCursor"):
        query = {**params, "cursor": page["nextCursor"]}
        headers["Link"] = f'<{request.path}?{urlencode(query)}>; rel="next"'
    return json_response(page["items"] if items is None else items, headers=headers)
