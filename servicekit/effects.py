"""Recording an effect outside the database once it happened: the record is
retried, never the effect.

A handler that mails, say, claims its event in a transaction, sends, then
commits the claim: the commit is its record that the mail went out. Should
that commit fail because the database cannot be reached (a restart
terminates every connection, "terminating connection due to administrator
command"), raising would bring the event back and send the mail again.
:func:`commit_after_effect` waits the database out instead: it rolls back,
has the record added again to a fresh transaction, and commits that, after a
growing delay, until the database takes it; one warning line a retry, no
traceback.

Adding the record again must be harmless if it is there already (the first
commit may have reached the database with its answer lost):
``INSERT ... ON CONFLICT DO NOTHING``, as
:func:`servicekit.idempotency.claim_event` does.

Only a process that ends before the record is stored (killed; or stopped
while the database stays down past its grace period) leaves the effect
unrecorded, and the effect is then done again. Any other failure of the
commit, one that no wait can cure, raises at once.
"""

import logging

import eventlet

from .database_errors import UNREACHABLE, diagnose, meaning

log = logging.getLogger(__name__)

FIRST_DELAY_SECONDS = 0.2
MAX_DELAY_SECONDS = 5.0


def growing_delays(first=FIRST_DELAY_SECONDS, ceiling=MAX_DELAY_SECONDS):
    """``first``, doubled at each step up to ``ceiling`` seconds, for ever."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, ceiling)


def commit_after_effect(session, record, what, delays=None):
    """Commit ``session``, whose transaction records an effect already done.

    While the database cannot be reached, roll back, call ``record(session)``
    to add the record to a fresh transaction, and commit that, after each of
    ``delays`` in turn (seconds; by default :func:`growing_delays`, which
    never end). ``what`` names the record in the log lines ("the sent mark
    of event ..."). Returns how many retries it took; raises a failure that
    is not the database being out of reach, or the last one when ``delays``
    run out.
    """
    delays = iter(growing_delays() if delays is None else delays)
    retries = 0
    while True:
        try:
            if retries:
                record(session)
            session.commit()
        except Exception as exc:
            if meaning(exc) != UNREACHABLE:
                raise
            _roll_back(session)
            delay = next(delays, None)
            if delay is None:
                raise
            retries += 1
            log.warning(
                "%s not stored: the database cannot be reached (%s); retry %d in %g s",
                what,
                diagnose(exc).detail,
                retries,
                delay,
            )
            eventlet.sleep(delay)
            continue
        if retries:
            log.info("%s stored after %d retries", what, retries)
        return retries


def _roll_back(session):
    """End the failed transaction; a connection that is gone has nothing to
    roll back (SQLAlchemy drops it, and the next use takes a new one)."""
    try:
        session.rollback()
    except Exception as exc:
        if meaning(exc) != UNREACHABLE:
            raise
