"""Stopping a ``nameko run`` process: SIGTERM lets the work in flight finish
(and acks it), SIGKILL hands it to another copy, and a hung worker does not
keep the process alive past its grace period (servicekit.shutdown)."""

import signal
import time

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from servicekit.config import CONFIG_PATH
from tests.support import eventually

from .conftest import DEADLINE, STOP_SECONDS, queue_state

pytestmark = pytest.mark.faults

SERVICE = "servicekit.tests.slow_service"
QUEUE = "rpc-slow"
GRACE_SECONDS = 3


@pytest.fixture
def start_slow(config, nameko_run):
    """Start one more copy of the slow service; wait until it consumes."""

    def start(config_path=CONFIG_PATH):
        copies = queue_state(config, QUEUE)[1]
        process = nameko_run(SERVICE, config_path)
        eventually(lambda: queue_state(config, QUEUE)[1] == copies + 1, timeout=DEADLINE)
        return process

    return start


def started(process, token):
    eventually(lambda: f"started {token} " in process.log(), timeout=DEADLINE)


def stopped_within(process, timeout):
    """``(exit status, seconds it took)``."""
    begin = time.monotonic()
    status = process.wait(timeout)
    return status, time.monotonic() - begin


def test_sigterm_lets_work_in_flight_finish_and_acks_it(config, start_slow):
    process = start_slow()
    with ClusterRpcProxy(config, timeout=DEADLINE) as n:
        reply = n.slow.work.call_async("in-flight", 2)
        started(process, "in-flight")
        process.send(signal.SIGTERM)
        answered_by = reply.result()
    status, took = stopped_within(process, STOP_SECONDS)

    left, _ = queue_state(config, QUEUE)
    print(
        f"\n[SIGTERM] a 2 s call in flight was answered; the process exited with {status} "
        f"{took:.2f} s after the answer; requests left in the queue: {left}"
    )
    assert answered_by == process.pid
    assert status == 0
    assert process.log().count("finished in-flight ") == 1
    assert left == 0  # acked: no copy will run it again


def test_sigkill_hands_unacked_work_to_another_copy(config, start_slow):
    first = start_slow()
    with ClusterRpcProxy(config, timeout=DEADLINE) as n:
        reply = n.slow.work.call_async("orphan", 1)
        started(first, "orphan")
        second = start_slow()
        first.send(signal.SIGKILL)
        killed = time.monotonic()
        answered_by = reply.result()
    answered_after = time.monotonic() - killed

    print(
        f"\n[SIGKILL] the call the killed copy held was run again by the other copy and "
        f"answered {answered_after:.2f} s after the kill"
    )
    assert answered_by == second.pid
    assert "finished orphan " not in first.log()


def test_sigterm_with_a_hung_worker_exits_after_the_grace_period(config, start_slow, tmp_path):
    config_path = tmp_path / "config.yml"
    config_path.write_text(CONFIG_PATH.read_text() + f"\nSHUTDOWN_GRACE_SECONDS: {GRACE_SECONDS}\n")
    process = start_slow(config_path)
    with ClusterRpcProxy(config, timeout=DEADLINE) as n:
        n.slow.work.call_async("hung", 3600)
        started(process, "hung")
        process.send(signal.SIGTERM)
        status, took = stopped_within(process, STOP_SECONDS)

    # The broker requeues it once it sees the connection gone.
    left = eventually(lambda: queue_state(config, QUEUE)[0], timeout=DEADLINE)
    print(
        f"\n[SIGTERM, hung worker] exited with {status} {took:.2f} s after SIGTERM "
        f"(grace {GRACE_SECONDS} s); requests back in the queue for another copy: {left}"
    )
    assert status == 1
    assert "still stopping" in process.log()
    assert left == 1
