"""Scenario 3: one of two ``users`` processes is SIGKILLed during a burst of creates.

Every call gets an answer or a clear error, and no write is applied twice:
one row per email whatever happened, and a retried create is a Conflict.
A request the killed process held unacked goes to the other process, so a
create that committed just before the kill is answered with a Conflict.
"""

import signal
import time

import eventlet
import pytest
from nameko.exceptions import RpcTimeout
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import func, select

from servicekit.errors import Conflict
from tests.support import eventually
from users.models import OutboxMessage, User

from .conftest import DEADLINE, count, new_user, queue_state

pytestmark = pytest.mark.faults

CALLS = 120
CLIENTS = 20  # concurrent callers, each with its own proxy
KILL_AFTER_ROWS = CALLS // 4
CALL_TIMEOUT = 15


def outcome(call):
    """``"ok"``, or the name of the error the caller got."""
    try:
        call()
    except Exception as exc:
        return type(exc).__name__
    return "ok"


def test_sigkill_during_a_burst_loses_no_answer_and_doubles_no_write(
    config, nameko_run, db_session
):
    instances = [nameko_run("users.service") for _ in range(2)]
    eventually(lambda: queue_state(config, "rpc-users")[1] == 2, timeout=DEADLINE)
    users_db = db_session("users")
    payloads = [new_user(n) for n in range(CALLS)]
    emails = [payload["emailAddress"] for payload in payloads]
    pending = iter(payloads)
    answers = {}  # email -> "ok" or the error's class name
    spans = []  # (sent, answered) of each call

    def client():
        with ClusterRpcProxy(config, timeout=CALL_TIMEOUT) as n:
            for payload in pending:
                sent = time.monotonic()
                answers[payload["emailAddress"]] = outcome(lambda p=payload: n.users.create(p))
                spans.append((sent, time.monotonic()))

    def killer():
        eventually(lambda: rows() >= KILL_AFTER_ROWS, timeout=DEADLINE, interval=0.01)
        instances[0].send(signal.SIGKILL)
        return rows(), time.monotonic()

    def rows():
        return count(users_db, User, User.email_address.in_(emails))

    started = time.monotonic()
    kill = eventlet.spawn(killer)
    pool = eventlet.GreenPool(CLIENTS)
    for _ in range(CLIENTS):
        pool.spawn_n(client)
    pool.waitall()
    burst_seconds = time.monotonic() - started
    rows_at_kill, killed_at = kill.wait()
    # Calls waiting for an answer when the kill came, from either process.
    in_flight = sum(sent < killed_at < answered for sent, answered in spans)

    # Every call that failed is made again: it creates the user, or it is a Conflict.
    with ClusterRpcProxy(config, timeout=CALL_TIMEOUT) as n:
        retries = {
            email: outcome(lambda p=payload: n.users.create(p))
            for email, payload in zip(emails, payloads, strict=True)
            if answers[email] != "ok"
        }
        # And a create of every email once more: all Conflicts.
        again = {outcome(lambda p=payload: n.users.create(p)) for payload in payloads}

    users_db.rollback()
    rows_per_email = dict(
        users_db.execute(
            select(func.lower(User.email_address), func.count())
            .where(User.email_address.in_(emails))
            .group_by(func.lower(User.email_address))
        ).all()
    )
    # The survivor's sweeper publishes what the killed process left unpublished.
    eventually(
        lambda: count(users_db, OutboxMessage, OutboxMessage.published_at.is_(None)) == 0,
        timeout=DEADLINE,
    )
    events = count(
        users_db, OutboxMessage, OutboxMessage.payload["data"]["emailAddress"].astext.in_(emails)
    )
    tally = {kind: list(answers.values()).count(kind) for kind in sorted(set(answers.values()))}
    print(
        f"\n[SIGKILL mid-burst] {CALLS} creates from {CLIENTS} clients over two processes, "
        f"one killed after {rows_at_kill} rows with {in_flight} calls in flight; "
        f"burst took {burst_seconds:.1f} s; "
        f"answers {tally}; retried {len(retries)}: "
        f"{ {kind: list(retries.values()).count(kind) for kind in set(retries.values())} }; "
        f"rows {sum(rows_per_email.values())} for {len(rows_per_email)} emails; "
        f"user_added events {events}"
    )
    assert instances[0].wait(5) == -signal.SIGKILL
    assert len(answers) == CALLS
    assert set(answers.values()) <= {"ok", Conflict.__name__, RpcTimeout.__name__}
    assert set(retries.values()) <= {"ok", Conflict.__name__}
    assert again == {Conflict.__name__}
    assert rows_per_email == {email: 1 for email in emails}
    assert events == CALLS
