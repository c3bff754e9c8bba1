"""Helpers for tests of services on the real broker (with the fixtures of
servicekit.testing): a running service and its proxy, and events read off the
bus as a subscriber gets them."""

import contextlib
import queue
import uuid

from kombu import Connection, Exchange, Queue
from nameko.standalone.rpc import ServiceRpcProxy


@contextlib.contextmanager
def running_service(container_factory, config, service_cls):
    """``service_cls`` started in a container; yields an RPC proxy to it."""
    container_factory(service_cls, config).start()
    with ServiceRpcProxy(service_cls.name, config) as proxy:
        yield proxy


class EventTap:
    def __init__(self, simple_queue):
        self._queue = simple_queue

    def take(self, count, timeout=5.0):
        """The next ``count`` events as ``(event_type, payload)``, in order."""
        events = []
        for _ in range(count):
            try:
                message = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"{len(events)} of {count} events after {timeout} s") from None
            message.ack()
            events.append((message.delivery_info["routing_key"], message.payload))
        return events

    def assert_quiet(self, timeout=0.5):
        """Nothing more arrives within ``timeout``."""
        with contextlib.suppress(queue.Empty):
            message = self._queue.get(timeout=timeout)
            raise AssertionError(f"unexpected event {message.delivery_info['routing_key']}")


@contextlib.contextmanager
def event_tap(config, service_name):
    """A private queue bound to ``<service_name>.events`` (every event type)
    for the block: ``tap.take(3)`` reads what was published meanwhile."""
    # Declared as nameko declares it, so whichever side comes first agrees.
    exchange = Exchange(f"{service_name}.events", type="topic", durable=True, auto_delete=False)
    tap_queue = Queue(
        f"test-tap-{service_name}-{uuid.uuid4().hex}",
        exchange=exchange,
        routing_key="#",
        exclusive=True,
        auto_delete=True,
    )
    with Connection(config["AMQP_URI"]) as conn, conn.SimpleQueue(tap_queue) as simple_queue:
        yield EventTap(simple_queue)


def crud_events(proxy, config, resource, new_item, change):
    """Create, update (with ``change``) and delete one item of a
    servicekit.crud service; check that each was published, in order, as
    ``<resource>_added``/``_updated``/``_deleted`` with the contract's
    payload whose ``data`` is what the RPC returned. Returns the payloads."""
    with event_tap(config, proxy.service_name) as tap:
        created = proxy.create(new_item)
        returned = [created, proxy.update(created["id"], change), proxy.delete(created["id"])]
        published = tap.take(3)
        tap.assert_quiet()

    kinds = [f"{resource}_{step}" for step in ("added", "updated", "deleted")]
    assert [(kind, payload["data"]) for kind, payload in published] == list(
        zip(kinds, returned, strict=True)
    )
    for _, payload in published:
        assert set(payload) == {"eventId", "occurredAt", "data"}
        uuid.UUID(payload["eventId"])
        assert payload["occurredAt"].endswith("Z")
    return [payload for _, payload in published]
