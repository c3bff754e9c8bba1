"""Event handlers that retry with a growing delay, on the broker, then park.

``@event_handler("articles", "article_added")`` is nameko's handler, on the
same durable queue (``evt-<source>-<type>--<service>.<method>``), with one
difference: a message whose handler raises is not dropped. It is republished
to a wait queue, ``<queue>.retry.<delay in ms>``, whose TTL dead-letters it
back to the handler's queue when the delay is over. After the last delay, or
at once for an error listed in ``no_retry``, it is parked in ``<queue>.dead``
with its error, where an operator lists, replays or discards it
(:class:`DeadLetters`, :func:`dead_letter_rpcs`).

No worker sleeps, and one delay per wait queue means messages expire in the
order they entered (no head-of-line blocking). The original is acked only
once the broker has confirmed its copy; if republishing fails it is requeued.
"""

import logging
import uuid
from contextlib import closing
from itertools import islice

from kombu import Connection, Queue
from kombu.common import maybe_declare
from nameko.amqp.publish import Publisher, get_connection
from nameko.constants import AMQP_URI_CONFIG_KEY, PERSISTENT
from nameko.events import EventHandler
from nameko.extensions import DependencyProvider

from .db import iso, utcnow
from .idempotency import MalformedEvent
from .rpc import rpc

log = logging.getLogger(__name__)

DEFAULT_RETRY_DELAYS = (1, 5, 30, 120, 600)
# Overrides the handlers' default delays: "1,5,30" (seconds) or a list.
CONFIG_KEY = "RETRY_DELAYS_SECONDS"

ATTEMPT_HEADER = "x-retry-attempt"  # retries made so far; absent on the first delivery
ERROR_HEADER = "x-last-error"
PARKED_AT_HEADER = "x-parked-at"
MAX_ERROR_CHARS = 500
# The worker's context data gets the attempt under this key (0 = first try).
CONTEXT_KEY = "retry_attempt"

_OWN_HEADERS = (ATTEMPT_HEADER, ERROR_HEADER, PARKED_AT_HEADER)
# Set by RabbitMQ when a wait queue expires a message: dropped on republish,
# or they would grow with every retry.
_BROKER_HEADER_PREFIXES = ("x-death", "x-first-death-", "x-last-death-")


def parse_delays(value):
    """``"1,5,30"`` or ``[1, 5, 30]`` seconds as a tuple of floats."""
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    delays = tuple(float(delay) for delay in value)
    if any(delay <= 0 for delay in delays):
        raise ValueError(f"retry delays must be positive: {value!r}")
    return delays


def wait_queue(handler_queue, delay):
    ms = round(delay * 1000)
    return Queue(
        f"{handler_queue}.retry.{ms}",
        durable=True,
        queue_arguments={
            "x-message-ttl": ms,
            # The default exchange routes by queue name: straight back home.
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": handler_queue,
        },
    )


def dead_queue(handler_queue):
    return Queue(f"{handler_queue}.dead", durable=True)


def attempt_of(message):
    try:
        return int(message.headers.get(ATTEMPT_HEADER, 0))
    except (TypeError, ValueError):
        return 0


def clean_headers(headers):
    """The message's headers without retry bookkeeping."""
    return {
        key: value
        for key, value in headers.items()
        if key not in _OWN_HEADERS and not key.startswith(_BROKER_HEADER_PREFIXES)
    }


def _event_id(message):
    try:
        return str(message.decode()["eventId"])
    except Exception:  # not a JSON object with an eventId
        return None


def republish(publisher, message, queue_name, headers, **properties):
    """The same body and properties, to ``queue_name``, confirmed by the broker."""
    message_id = properties.pop("message_id", None) or message.properties.get("message_id")
    if message_id:
        properties["message_id"] = message_id
    publisher.publish(
        message.body,
        exchange="",
        routing_key=queue_name,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        **properties,
    )


def _confirming_publisher(amqp_uri):
    # mandatory: a missing queue raises instead of dropping the copy.
    return Publisher(amqp_uri, use_confirms=True, delivery_mode=PERSISTENT, mandatory=True)


class RetryingEventHandler(EventHandler):
    """nameko's ``EventHandler`` (service pool) with delayed retries and parking.

    ``retry_delays``: seconds to wait before each retry; by default the
    config's ``RETRY_DELAYS_SECONDS``, else :data:`DEFAULT_RETRY_DELAYS`.
    ``no_retry``: exception classes parked at once (retrying cannot help).
    """

    def __init__(
        self, source_service, event_type, retry_delays=None, no_retry=(MalformedEvent,), **kwargs
    ):
        self.retry_delays = retry_delays
        self.no_retry = tuple(no_retry)
        super().__init__(source_service, event_type, **kwargs)

    def setup(self):
        super().setup()  # names self.queue
        config = self.container.config
        delays = self.retry_delays
        if delays is None:
            delays = config.get(CONFIG_KEY, DEFAULT_RETRY_DELAYS)
        self.delays = parse_delays(delays)
        self.wait_queues = [wait_queue(self.queue.name, delay) for delay in self.delays]
        self.dead_queue = dead_queue(self.queue.name)
        # Declared now, so that operators see them before the first failure.
        with get_connection(config[AMQP_URI_CONFIG_KEY]) as conn:
            for queue in [*self.wait_queues, self.dead_queue]:
                maybe_declare(queue, conn.default_channel)
        self.publisher = _confirming_publisher(config[AMQP_URI_CONFIG_KEY])

    def unpack_message_headers(self, message):
        # Bookkeeping headers stay out of the context data, which nameko
        # copies into every call and event the worker makes.
        context = {
            key: value
            for key, value in super().unpack_message_headers(message).items()
            if not key.startswith("x-")
        }
        context[CONTEXT_KEY] = attempt_of(message)
        return context

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            return
        try:
            self._retry_or_park(message, exc_info[1])
        except Exception:
            # Never raise here (it would kill the container), never ack.
            log.exception("could not republish a failed %s; requeued", self.queue.name)
            self.queue_consumer.requeue_message(message)
        else:
            self.queue_consumer.ack_message(message)

    def _retry_or_park(self, message, exc):
        attempt = attempt_of(message)
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        headers = {**clean_headers(message.headers), ERROR_HEADER: error}
        if attempt < len(self.delays) and not isinstance(exc, self.no_retry):
            headers[ATTEMPT_HEADER] = attempt + 1
            republish(self.publisher, message, self.wait_queues[attempt].name, headers)
            log.warning(
                "%s failed (%s); retry %d in %g s",
                self.queue.name,
                error,
                attempt + 1,
                self.delays[attempt],
            )
            return
        headers[ATTEMPT_HEADER] = attempt
        headers[PARKED_AT_HEADER] = iso(utcnow())
        # Every parked message gets an id the operator can name.
        message_id = message.properties.get("message_id") or _event_id(message) or uuid.uuid4().hex
        republish(self.publisher, message, self.dead_queue.name, headers, message_id=message_id)
        log.error(
            "%s failed on try %d (%s); parked as %s in %s",
            self.queue.name,
            attempt + 1,
            error,
            message_id,
            self.dead_queue.name,
        )


event_handler = RetryingEventHandler.decorator


class DeadLetters(DependencyProvider):
    """The service's parked messages, for operators.

    ``list(limit)`` describes them; ``replay(message_id=None)`` sends them
    back to their handler with the attempt counter reset, and
    ``discard(message_id=None)`` deletes them (``None``: all).
    """

    def setup(self):
        self.amqp_uri = self.container.config[AMQP_URI_CONFIG_KEY]
        self.publisher = _confirming_publisher(self.amqp_uri)

    def get_dependency(self, worker_ctx):
        return self

    def list(self, limit=100):
        with closing(self._parked()) as parked:
            return [describe(handler, msg) for handler, msg in islice(parked, int(limit))]

    def replay(self, message_id=None):
        count = 0
        with closing(self._parked(message_id)) as parked:
            for handler, message in parked:
                republish(
                    self.publisher, message, handler.queue.name, clean_headers(message.headers)
                )
                message.ack()
                count += 1
        log.info("replayed %d parked message(s)", count)
        return count

    def discard(self, message_id=None):
        count = 0
        with closing(self._parked(message_id)) as parked:
            for _, message in parked:
                message.ack()
                count += 1
        log.warning("discarded %d parked message(s)", count)
        return count

    def _handlers(self):
        return [ep for ep in self.container.entrypoints if isinstance(ep, RetryingEventHandler)]

    def _parked(self, message_id=None):
        """``(handler, message)`` for each parked message (with ``message_id``).

        Messages are fetched unacked; those neither acked nor replayed go back
        to their queue, in order, when the channel closes.
        """
        with Connection(self.amqp_uri) as conn, conn.channel() as channel:
            for handler in self._handlers():
                queue = handler.dead_queue(channel)
                # Only what is parked now: a replayed message that fails again
                # and is parked during this loop waits for the next call.
                for _ in range(queue.queue_declare().message_count):
                    message = queue.get(no_ack=False)
                    if message is None:
                        break
                    if message_id in (None, message.properties.get("message_id")):
                        yield handler, message


def describe(handler, message):
    headers = message.headers
    return {
        "id": message.properties.get("message_id"),
        "sourceService": handler.source_service,
        "eventType": handler.event_type,
        "queue": handler.queue.name,
        "attempts": attempt_of(message) + 1,
        "lastError": headers.get(ERROR_HEADER),
        "parkedAt": headers.get(PARKED_AT_HEADER),
    }


def dead_letter_rpcs():
    """The operator RPCs, for a service with ``dead_letters = DeadLetters()``::

        dead_letters = DeadLetters()
        dead_letters_list, dead_letters_replay, dead_letters_discard = dead_letter_rpcs()

    then ``n.rpc.<service>.dead_letters_list()``, ``.dead_letters_replay(id)``,
    ``.dead_letters_discard(id)`` (no id: every parked message). Functions,
    not a base class: ``nameko run <module>`` takes every class with
    entrypoints in the module for a service, and would take a mixin too.
    """

    @rpc
    def dead_letters_list(self, limit=100):
        return self.dead_letters.list(limit)

    @rpc
    def dead_letters_replay(self, message_id=None):
        return self.dead_letters.replay(message_id)

    @rpc
    def dead_letters_discard(self, message_id=None):
        return self.dead_letters.discard(message_id)

    return dead_letters_list, dead_letters_replay, dead_letters_discard
