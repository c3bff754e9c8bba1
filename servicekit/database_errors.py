"""What a database failure means.

psycopg2 reports every failure to connect as one ``OperationalError``, while
each needs its own answer: a server that is not running (yet), one that
refused the login, a database that is missing, only standbys where a URL
names several servers and asks for the primary
(``target_session_attrs=read-write``: one is being promoted, or none is).
:func:`diagnose` tells them apart, for the readiness probe and the operator
tools' messages. Where a URL names several servers, libpq says what each
answered, one after the other, in one message.

:func:`service_error` is what a failure means to the caller of an RPC
(``servicekit.rpc`` asks it of every failure of every ``@rpc``), by the
error's SQLSTATE class rather than by the driver's exception class:

- the database cannot be reached (class 08, connection exception; the
  server shutting down or starting, 57P01-57P03; libpq's own failures,
  which carry no SQLSTATE; a connection SQLAlchemy found closed): an
  :class:`~servicekit.errors.ServiceUnavailable`, said in one warning line;
- a statement cancelled by ``statement_timeout`` (57014, query_canceled):
  an ``ServiceUnavailable`` too, saying that a query took too long;
- a limit of the database (class 54, program limit exceeded: a ``tsvector``
  over 1 MB, an index row too large): a
  :class:`~servicekit.errors.PayloadTooLarge` saying what is too big;
- anything else is a bug: ``None``, and the error stays unexpected (a 500,
  logged with its traceback).
"""

import logging
from typing import NamedTuple

import psycopg2
from sqlalchemy.exc import DBAPIError, DisconnectionError

from .errors import PayloadTooLarge, ServiceUnavailable

log = logging.getLogger(__name__)

NOT_RUNNING = "not running"
LOGIN_REFUSED = "refused the login"
DATABASE_MISSING = "database missing"
STARTING = "starting up"
NO_PRIMARY = "no primary"

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
    # target_session_attrs=read-write (or primary) found standbys alone, the
    # other servers down: libpq 14 and later, then older versions.
    (NO_PRIMARY, ("session is read-only",)),
    (NO_PRIMARY, ("server is in hot standby mode",)),
    (NO_PRIMARY, ("could not make a writable connection",)),
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


# What a failure means to a caller (:func:`meaning`).
UNREACHABLE = "unreachable"
TOO_SLOW = "too slow"
TOO_LARGE = "too large"

# SQLSTATEs (PostgreSQL's manual, appendix A "Error Codes").
CONNECTION_EXCEPTION = "08"  # the class
SHUTTING_DOWN = frozenset({"57P01", "57P02", "57P03"})  # admin, crash, cannot connect now
QUERY_CANCELED = "57014"  # statement_timeout, or a cancel request
PROGRAM_LIMIT_EXCEEDED = "54"  # the class


def driver_error(exc):
    """psycopg2's own exception in ``exc`` (SQLAlchemy wraps it), or ``None``."""
    error = exc.orig if isinstance(exc, DBAPIError) else exc
    return error if isinstance(error, psycopg2.Error) else None


def sqlstate(exc):
    """The SQLSTATE of a database error (``"57014"``), or ``None``."""
    error = driver_error(exc)
    return None if error is None else error.pgcode


def meaning(exc):
    """:data:`UNREACHABLE`, :data:`TOO_SLOW`, :data:`TOO_LARGE`, or ``None``:
    not a failure a caller can be told about (a bug)."""
    if isinstance(exc, DisconnectionError):
        return UNREACHABLE
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return UNREACHABLE  # SQLAlchemy found the connection gone
    error = driver_error(exc)
    if error is None:
        return None
    code = error.pgcode
    if code is None:
        # libpq's own failures have no SQLSTATE: no server reached, a
        # connection lost or already closed.
        reached = isinstance(error, psycopg2.OperationalError | psycopg2.InterfaceError)
        return UNREACHABLE if reached else None
    if code.startswith(CONNECTION_EXCEPTION) or code in SHUTTING_DOWN:
        return UNREACHABLE
    if code == QUERY_CANCELED:
        return TOO_SLOW
    if code.startswith(PROGRAM_LIMIT_EXCEEDED):
        return TOO_LARGE
    return None


def service_error(exc, service):
    """The typed error that the database failure ``exc``, met by the service
    named ``service`` (its ``name``, at run time), means to its caller; or
    ``None`` (a bug: let it be unexpected)."""
    kind = meaning(exc)
    if kind == UNREACHABLE:
        # One line: during an outage every request says it.
        log.warning("the %s service cannot reach its database: %s", service, diagnose(exc).detail)
        return ServiceUnavailable(
            f"The {service} service cannot reach its database; try again later."
        )
    if kind == TOO_SLOW:
        log.warning("a query of the %s service took too long: %s", service, _primary(exc))
        return ServiceUnavailable(
            f"The {service} service took too long to answer; try again later."
        )
    if kind == TOO_LARGE:
        return PayloadTooLarge(f"Too large for the database: {_primary(exc)}.")
    return None


def _primary(exc):
    """The server's message, without its ``DETAIL``/``CONTEXT`` lines."""
    error = driver_error(exc)
    message = getattr(getattr(error, "diag", None), "message_primary", None) or str(error or exc)
    return " ".join(message.split())
