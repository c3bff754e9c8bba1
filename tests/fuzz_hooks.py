"""Schemathesis hooks of ``make fuzz`` and ``tests/test_fuzz.py`` (loaded by
schemathesis through ``SCHEMATHESIS_HOOKS``, set by ``tests/fuzz.py``).

Each is narrow, for a rule of the contract that JSON Schema cannot state:

- **The run's own user is left alone.** The token is the seeded admin's
  (``FUZZ_PROTECTED_USER_ID``); a generated ``PUT`` or ``DELETE`` of that
  very user would change its password, email or role under the run (a role
  change revokes the token, and the next ``make fuzz`` could not log in).
  Every other user is changed and deleted as generated.
- **Idempotency-Keys are new.** A key used before with another request is a
  422 (the parameter's description), and whether a key was used before
  depends on earlier requests, of this run or of an earlier one within 24
  hours: generated keys repeat (``"0"``, ``" "``), so each valid one is
  replaced by a fresh valid one. Invalid keys are sent as generated.
- **Documented rejections of schema-valid data** are no failure of
  ``positive_data_acceptance`` (see :func:`documented_rejection`). Only
  those answers of that one check are dropped; every other failure counts.

Plain Python, no project imports: schemathesis executes this file by path.
"""

import json
import os
import re
import uuid

import schemathesis

PROTECTED_USER_ENV = "FUZZ_PROTECTED_USER_ID"  # set by tests/fuzz.py
USER_ITEM = "/api/users/{id}"
LIST_PATHS = ("/api/articles", "/api/events", "/api/users")
IDEMPOTENCY_KEY = "Idempotency-Key"
VALID_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")

POSITIVE_DATA_ACCEPTANCE = "ST202"  # "Schema-valid request rejected"
NUL_OR_UNPAIRED_SURROGATE = re.compile("[\x00\ud800-\udfff]")


@schemathesis.hook
def filter_case(context, case):
    """Not the run's own user: see the module's docstring."""
    protected = os.environ.get(PROTECTED_USER_ENV)
    operation = case.operation
    return not (
        protected
        and operation.path == USER_ITEM
        and operation.method.upper() in ("PUT", "DELETE")
        and (case.path_parameters or {}).get("id") == protected
    )


@schemathesis.hook
def map_case(context, case):
    """A fresh Idempotency-Key for each valid one: see the module's docstring."""
    key = (case.headers or {}).get(IDEMPOTENCY_KEY)
    if isinstance(key, str) and VALID_IDEMPOTENCY_KEY.fullmatch(key):
        case.headers[IDEMPOTENCY_KEY] = f"fuzz-{uuid.uuid4().hex}"
    return case


def error_of(response):
    """``(error code, details)`` of the contract's error JSON, or ``(None, {})``."""
    try:
        answer = json.loads(response.content)
    except ValueError:
        return None, {}
    if not isinstance(answer, dict):
        return None, {}
    details = answer.get("details")
    return answer.get("error"), details if isinstance(details, dict) else {}


def strings_in(value):
    """Every string in a JSON-like value, keys too."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(key)
            yield from strings_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings_in(item)


def documented_rejection(case, response):
    """Why the contract rejects this schema-valid request, or ``None``.

    What the document says in words and JSON Schema cannot:

    - A NUL character or an unpaired surrogate anywhere in the body or the
      query is a 400 (the table of errors): one rule for every text, which
      PostgreSQL and UTF-8 cannot store, not a keyword of each field.
    - A cursor is opaque, "from the `Link` of the previous page" (its
      description): any other text is a 400, whatever string it is.
    - A date that does not exist (30 February), in a form the pattern lets
      through, is refused (its description); so is a `from` after `to`.
    - A search of only exclusions (`q=-word`) is a 422 (its description).
    """
    error, details = error_of(response)
    if (response.status_code, error) == (422, "VALIDATION_ERROR") and set(details) == {"eventDate"}:
        return "a date that does not exist"
    if (response.status_code, error) == (422, "VALIDATION_ERROR") and set(details) == {"q"}:
        return "a search of only exclusions"
    if response.status_code != 400 or error != "BAD_REQUEST":
        return None
    if details and set(details) <= {"from", "to"} and case.operation.path == "/api/events":
        return "a date that does not exist, or from after to"
    sent = [*strings_in(case.body), *strings_in(case.query or {})]
    if any(NUL_OR_UNPAIRED_SURROGATE.search(text) for text in sent):
        return "a NUL character or an unpaired surrogate"
    if set(details) == {"cursor"} and case.operation.path in LIST_PATHS:
        return "a cursor not from a Link"
    return None


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Every failure but a documented rejection of schema-valid data."""
    if failure.code != POSITIVE_DATA_ACCEPTANCE:
        return True
    return documented_rejection(case, response) is None
