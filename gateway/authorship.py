"""Who may write an article or an event.

Any valid token may create; only the author or an admin may update or
delete. The author check is the service's ``expected_author`` argument, made
under the row lock in the transaction of the change: one RPC, and no window
between a check and the write. The service knows nothing of HTTP callers;
the gateway decides whose author id to expect (none for an admin).

``authorUID`` defaults to the caller. A non-admin who sends someone else's
``authorUID`` (on create or update) gets 403 rather than having it silently
replaced: the client learns that its request was not done as written.
"""

from servicekit.errors import Forbidden

from .apidoc import ANYONE, TOKEN, Access

# Who may do what to a news item (the five routes' access in the API document).
NEWS_ACCESS = {
    "list": ANYONE,
    "get": ANYONE,
    "create": Access(
        "any token", TOKEN, "A caller who is no admin names another user as `authorUID`."
    ),
    "update": Access(
        "its author or an admin",
        TOKEN,
        "The caller is neither the author nor an admin, or names another user as "
        "`authorUID` without being an admin.",
    ),
    "delete": Access(
        "its author or an admin", TOKEN, "The caller is neither the author nor an admin."
    ),
}


def expected_author(caller):
    """Whose items the caller may change: any (``None``) for an admin."""
    return None if caller.role == "admin" else caller.user_id


def checked_author(caller, body):
    """``body``, refused if it names another author and the caller is no admin."""
    if "authorUID" in body and expected_author(caller) not in (None, body["authorUID"]):
        raise Forbidden(
            "Only an admin may make another user the author.",
            {"authorUID": ["Must be your own user id."]},
        )
    return body


def authored_by_caller(caller, body):
    """A new item's body: ``authorUID`` checked, and the caller's by default."""
    return {"authorUID": caller.user_id, **checked_author(caller, body)}
