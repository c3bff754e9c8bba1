"""What a failure to reach PostgreSQL means.

psycopg2 reports every failure to connect as one ``OperationalError``, while
each needs its own answer: a server that is not running (yet), one that
refused the login, a database that is missing. :func:`diagnose` tells them
apart, for the readiness probe and the operator tools' messages.
"""

from typing import NamedTuple

NOT_RUNNING = "not running"
LOGIN_REFUSED = "refused the login"
DATABASE_MISSING = "database missing"
STARTING = "starting up"

# libpq's words (English: the project's processes run without a locale
# that would translate them), most specific first.
_SIGNS = (
    (DATABASE_MISSING, ('database "', '" does not exist')),
    (LOGIN_REFUSED, ("password authentication failed",)),
    (LOGIN_REFUSED, ("no password supplied",)),
    (LOGIN_REFUSED, ('role "', '" does not exist')),
    (LOGIN_REFUSED, ("peer authentication failed",)),
    (LOGIN_REFUSED, ("ident authentication failed",)),
    (LOGIN_REFUSED, ("no pg_hba.conf entry",)),
    (LOGIN_REFUSED, ("is not permitted to log in",)),
    (STARTING, ("the database system is starting up",)),
    (STARTING, ("the database system is shutting down",)),
    (NOT_RUNNING, ("connection refused",)),
    (NOT_RUNNING, ("no such file or directory",)),  # no Unix socket
    (NOT_RUNNING, ("timeout expired",)),
    (NOT_RUNNING, ("could not translate host name",)),
    (NOT_RUNNING, ("network is unreachable",)),
    (NOT_RUNNING, ("no route to host",)),
)


class Problem(NamedTuple):
    kind: str  # one of the constants above, or "error"
    detail: str  # the server's or libpq's own words, on one line


def diagnose(exc):
    """What a failure to connect means: a :class:`Problem`."""
    detail = " ".join(str(getattr(exc, "orig", None) or exc).split())
    lowered = detail.lower()
    for kind, parts in _SIGNS:
        if all(part in lowered for part in parts):
            return Problem(kind, detail)
    return Problem("error", detail)
