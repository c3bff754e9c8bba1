"""Event handlers that retry with a growing delay, on the broker, then park.

``@retrying_event_handler("articles", "article_added")`` is nameko's
``@event_handler``, on the same durable queue
(``evt-<source>-<type>--<service>.<method>``), with one difference: a
message whose handler raises is not dropped. It is republished
to a wait queue, ``<queue>.retry.<delay in ms>``, whose TTL dead-letters it
back to the handler's queue when the delay is over. After the last delay, or
at once for an error listed in ``no_retry``, it is parked in ``<queue>.dead``
with its error, where an operator lists, replays or discards it
(:mod:`servicekit.dead_letters`).

No worker sleeps, and one delay per wait queue means messages expire in the
order they entered (no head-of-line blocking). The original is acked only
once the broker has confirmed its copy; if republishing fails it is requeued.
"""

import logging
import uuid

from kombu import Queue
from kombu.common import maybe_declare
from nameko.amqp.publish import Publisher, get_connection
from nameko.constants import AMQP_URI_CONFIG_KEY, PERSISTENT
from nameko.events import EventHandler

from .db import iso, utcnow
from .entrypoints import SignatureOnce
from .idempotency import MalformedEvent
from .metrics import EVENT_RETRIES, EVENTS_PARKED
from .queues import durable_queue_arguments
from .shutdown import PromptQueueConsumer

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


def wait_queue(handler_queue, delay, config):
    ms = round(delay * 1000)
    arguments = {
        "x-message-ttl": ms,
        # The default exchange routes by queue name: straight back home.
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": handler_queue,
    }
    return Queue(
        f"{handler_queue}.retry.{ms}",
        durable=True,
        queue_arguments=durable_queue_arguments(config, **arguments),
    )


def dead_queue(handler_queue, config):
    return Queue(
        f"{handler_queue}.dead", durable=True, queue_arguments=durable_queue_arguments(config)
    )


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


def confirming_publisher(amqp_uri):
    # mandatory: a missing queue raises instead of dropping the copy.
    return Publisher(amqp_uri, use_confirms=True, delivery_mode=PERSISTENT, mandatory=True)


class RetryingEventHandler(SignatureOnce, EventHandler):
    """nameko's ``EventHandler`` (service pool) with delayed retries and parking.

    ``retry_delays``: seconds to wait before each retry; by default the
    config's ``RETRY_DELAYS_SECONDS``, else :data:`DEFAULT_RETRY_DELAYS`.
    ``no_retry``: exception classes parked at once (retrying cannot help).
    """

    queue_consumer = PromptQueueConsumer()
    # Each failure is one line of ours (servicekit.logs leaves out nameko's
    # for an expected error): what failed, why, and when it is tried again.
    logs_its_failures = True

    def __init__(
        self, source_service, event_type, retry_delays=None, no_retry=(MalformedEvent,), **kwargs
    ):
        self.retry_delays = retry_delays
        self.no_retry = tuple(no_retry)
        super().__init__(source_service, event_type, **kwargs)

    def setup(self):
        super().setup()  # names self.queue
        config = self.container.config
        self.queue.queue_arguments = durable_queue_arguments(
            config, **(self.queue.queue_arguments or {})
        )
        delays = self.retry_delays
        if delays is None:
            delays = config.get(CONFIG_KEY, DEFAULT_RETRY_DELAYS)
        self.delays = parse_delays(delays)
        self.wait_queues = [wait_queue(self.queue.name, delay, config) for delay in self.delays]
        self.dead_queue = dead_queue(self.queue.name, config)
        # Declared now, so that operators see them before the first failure.
        with get_connection(config[AMQP_URI_CONFIG_KEY]) as conn:
            for queue in [*self.wait_queues, self.dead_queue]:
                maybe_declare(queue, conn.default_channel)
        self.publisher = confirming_publisher(config[AMQP_URI_CONFIG_KEY])

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
            EVENT_RETRIES.labels(self.container.service_name, self.queue.name).inc()
            log.warning(
                "%s of %s event %s failed (%s); retry %d of %d in %g s",
                self.method_name,
                self.event_type,
                _event_id(message) or "?",
                error,
                attempt + 1,
                len(self.delays),
                self.delays[attempt],
            )
            return
        headers[ATTEMPT_HEADER] = attempt
        headers[PARKED_AT_HEADER] = iso(utcnow())
        # Every parked message gets an id the operator can name.
        message_id = message.properties.get("message_id") or _event_id(message) or uuid.uuid4().hex
        republish(self.publisher, message, self.dead_queue.name, headers, message_id=message_id)
        EVENTS_PARKED.labels(self.container.service_name, self.queue.name).inc()
        log.error(
            "%s of %s event %s failed on try %d (%s); parked in %s "
            "(n.rpc.%s.dead_letters_list() in the shell)",
            self.method_name,
            self.event_type,
            message_id,
            attempt + 1,
            error,
            self.dead_queue.name,
            self.container.service_name,
        )


retrying_event_handler = RetryingEventHandler.decorator
