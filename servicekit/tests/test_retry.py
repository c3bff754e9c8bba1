"""servicekit.retry on the real broker: delayed retries, parking, replay."""

import time
import uuid
from unittest.mock import ANY

import eventlet
import pytest
from kombu import Connection
from nameko.extensions import DependencyProvider
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.utils import get_extension

from servicekit.dead_letters import DeadLetters, dead_letter_rpcs
from servicekit.idempotency import MalformedEvent
from servicekit.retry import CONTEXT_KEY, RetryingEventHandler, retrying_event_handler

DELAYS = (0.2, 0.4)
QUEUE = "evt-source-thing_happened--flaky.handle"
ALWAYS = 10**6


class Attempt(DependencyProvider):
    """The retry attempt of the worker's message (0 on the first delivery)."""

    def get_dependency(self, worker_ctx):
        return worker_ctx.context_data.get(CONTEXT_KEY)


class Behaviour:
    """What the handler does and what it saw; reset by the fixture."""

    def reset(self):
        self.calls = []  # (eventId, attempt, monotonic time)
        self.failures_left = 0
        self.error = RuntimeError

    def attempts(self, event_id):
        return [attempt for eid, attempt, _ in self.calls if eid == event_id]


behaviour = Behaviour()


class FlakyService:
    name = "flaky"

    attempt = Attempt()
    dead_letters = DeadLetters()
    dead_letters_list, dead_letters_replay, dead_letters_discard = dead_letter_rpcs()

    @retrying_event_handler("source", "thing_happened", retry_delays=DELAYS)
    def handle(self, payload):
        behaviour.calls.append((payload["eventId"], self.attempt, time.monotonic()))
        if behaviour.failures_left:
            behaviour.failures_left -= 1
            raise behaviour.error(f"boom on call {len(behaviour.calls)}")


@pytest.fixture
def flaky(config, container_factory):
    behaviour.reset()
    container = container_factory(FlakyService, config)
    container.start()
    return container


@pytest.fixture
def operator(config, flaky):
    with ServiceRpcProxy("flaky", config, timeout=5) as proxy:
        yield proxy


@pytest.fixture
def publish(config, flaky):
    """Publish a ``source``/``thing_happened`` event; return its eventId."""
    dispatch = event_dispatcher(config)

    def publish_event():
        event_id = str(uuid.uuid4())
        dispatch("source", "thing_happened", {"eventId": event_id, "data": {}})
        return event_id

    return publish_event


def wait_until(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        eventlet.sleep(0.05)


def settle():
    """Long enough for any unexpected extra retry to show up."""
    eventlet.sleep(sum(DELAYS) + 0.3)


def park(publish, operator):
    behaviour.failures_left = ALWAYS
    event_id = publish()
    wait_until(lambda: event_id in {p["id"] for p in operator.dead_letters_list()})
    return event_id


def test_wait_queues_lead_back_to_the_handler_queue(flaky, rabbit_manager, rabbit_config):
    vhost = rabbit_config["vhost"]
    for delay_ms in (200, 400):
        queue = rabbit_manager.get_queue(vhost, f"{QUEUE}.retry.{delay_ms}")
        assert queue["durable"]
        arguments = dict(queue["arguments"])
        # RabbitMQ 4 names every queue's type; 3.x leaves a classic one unnamed.
        assert arguments.pop("x-queue-type", "classic") == "classic"
        assert arguments == {
            "x-message-ttl": delay_ms,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": QUEUE,
        }
    assert rabbit_manager.get_queue(vhost, f"{QUEUE}.dead")["durable"]


def test_failing_handler_is_retried_with_growing_delays(publish, operator):
    behaviour.failures_left = 2
    event_id = publish()

    wait_until(lambda: len(behaviour.calls) == 3)
    settle()

    assert behaviour.attempts(event_id) == [0, 1, 2]
    times = [t for _, _, t in behaviour.calls]
    # Lower bounds only: the TTL guarantees them, the scheduler adds to them.
    assert times[1] - times[0] >= DELAYS[0]
    assert times[2] - times[1] >= DELAYS[1]
    assert operator.dead_letters_list() == []


def test_handler_that_always_fails_is_parked_with_its_error(publish, operator):
    event_id = park(publish, operator)
    settle()

    assert behaviour.attempts(event_id) == [0, 1, 2]
    assert operator.dead_letters_list() == [
        {
            "id": event_id,
            "sourceService": "source",
            "eventType": "thing_happened",
            "queue": QUEUE,
            "attempts": 3,
            "lastError": "RuntimeError: boom on call 3",
            "parkedAt": ANY,
        }
    ]


def test_no_retry_errors_are_parked_at_once(publish, operator):
    behaviour.error = MalformedEvent
    event_id = park(publish, operator)
    settle()

    assert behaviour.attempts(event_id) == [0]
    [parked] = operator.dead_letters_list()
    assert parked["attempts"] == 1
    assert parked["lastError"] == "MalformedEvent: boom on call 1"


def test_replay_after_a_fix_runs_the_handler_once(publish, operator):
    event_id = park(publish, operator)
    behaviour.failures_left = 0  # the fix

    assert operator.dead_letters_replay() == 1
    wait_until(lambda: len(behaviour.calls) == 4)
    settle()

    assert behaviour.attempts(event_id) == [0, 1, 2, 0]
    assert operator.dead_letters_list() == []


def test_replay_and_discard_one_message_by_id(publish, operator):
    first, second = park(publish, operator), park(publish, operator)
    behaviour.failures_left = 0

    assert operator.dead_letters_replay(first) == 1
    wait_until(lambda: behaviour.attempts(first) == [0, 1, 2, 0])
    assert [p["id"] for p in operator.dead_letters_list()] == [second]

    assert operator.dead_letters_discard(second) == 1
    assert operator.dead_letters_list() == []
    assert behaviour.attempts(second) == [0, 1, 2]


def test_discard_empties_the_parked_queue(config, publish, operator):
    park(publish, operator)
    park(publish, operator)

    assert operator.dead_letters_discard() == 2

    assert operator.dead_letters_list() == []
    with Connection(config["AMQP_URI"]) as conn:
        # The management API's counters lag; ask the broker itself.
        assert conn.default_channel.queue_declare(f"{QUEUE}.dead", passive=True).message_count == 0
    assert operator.dead_letters_replay() == 0


def test_message_is_requeued_when_republishing_fails(flaky, publish, monkeypatch):
    publisher = get_extension(flaky, RetryingEventHandler).publisher
    working_publish = publisher.publish

    def broker_down_once(*args, **kwargs):
        monkeypatch.setattr(publisher, "publish", working_publish)
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(publisher, "publish", broker_down_once)
    behaviour.failures_left = 2
    event_id = publish()

    wait_until(lambda: len(behaviour.calls) == 3)
    settle()

    # The first failure could not be republished: the message came back as
    # it was (attempt 0), then took the normal retry path.
    assert behaviour.attempts(event_id) == [0, 0, 1]
