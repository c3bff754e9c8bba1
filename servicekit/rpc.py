"""RPC as every service serves it, and as the gateway sends it.

``@rpc`` is nameko's, with two changes:

- The typed errors of :mod:`servicekit.errors` are expected outcomes (a
  ``NotFound`` is the service doing its job), not failures to log as such.
- A database failure is answered by what it means
  (:func:`servicekit.database_errors.service_error`): a database out of
  reach or a query over its time limit is an ``ServiceUnavailable``, a database
  limit a ``PayloadTooLarge``; any other stays unexpected. This happens in
  the worker, around the method, because nameko logs a failure (with its
  traceback, when unexpected) before the reply is made: an outage is one
  warning line a request, not a traceback.
- Replies are sent without publisher confirms, as transient messages, and
  serialised once. A reply is worth what its caller's wait is worth: if one
  were lost, the caller's deadline ends the call (504), exactly as if the
  service had been slow; confirming it costs a broker round trip per call.
- Replies go out on the process's one :class:`DirectReplyCalls` connection,
  on a channel held open, rather than through nameko's publisher (a kombu
  producer pool looked up, and a connection object made, for every reply):
  an empty RPC cost the service ~100 µs of CPU less.
- A request that asks for RabbitMQ's direct reply-to (``reply_to``
  ``amq.rabbitmq.reply-to...``) is answered through the default exchange,
  as that asks; any other (``nameko shell``'s, say) through the RPC exchange.

:class:`DirectReplyCalls` is the other half, for callers that bound their
wait and learn whether a service runs from its queue's consumers (the
gateway's ``ServiceRpc``), and what services reply on: one connection a process, on which requests are
published (transient, unconfirmed, not ``mandatory``) and replies arrive by
direct reply-to. No reply queue exists, so none lives on one broker node:
losing a node of a cluster loses the calls in flight on that connection
(each fails at once with a 503), and the next calls go through another node
(``AMQP_URI`` may name several, separated by ``;``). A call that gets no
reply in time has its channel replaced (the calls waiting on the old one
still get their replies): a channel that published to a quorum queue while
its leader was being elected after a node loss can go on sending to the
dead leader (seen on RabbitMQ 3.10), and a new channel learns the new one.

What a change guarantees lives in the service's database and outbox, never in
these messages: an unconfirmed request that is lost changed nothing.
"""

import contextlib
import functools
import inspect
import logging
import time
import uuid

import amqp
import eventlet
import kombu
import kombu.serialization
import psycopg2
from eventlet.event import Event
from eventlet.semaphore import Semaphore
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_HEARTBEAT,
    DEFAULT_SERIALIZER,
    HEARTBEAT_CONFIG_KEY,
    LOGIN_METHOD_CONFIG_KEY,
    NON_PERSISTENT,
    SERIALIZER_CONFIG_KEY,
)
from nameko.exceptions import UnserializableValueError, deserialize, serialize
from nameko.extensions import SharedExtension
from nameko.rpc import Rpc, RpcConsumer, get_rpc_exchange
from sqlalchemy.exc import SQLAlchemyError

from .database_errors import service_error
from .entrypoints import SignatureOnce
from .errors import ServiceError, ServiceUnavailable
from .logs import Trouble
from .queues import durable_queue_arguments
from .shutdown import PromptQueueConsumer

log = logging.getLogger(__name__)

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
BROKER_AWAY = "The message broker cannot be reached; retry in a moment."
CONNECT_TIMEOUT_SECONDS = 5
# The first wait after a lost connection gives a cluster's quorum queues
# time to elect new leaders (0.1 to 2 s seen) before calls are published.
RECONNECT_DELAY_SECONDS = (1.0, 2.0)  # the first wait, the longest
RENEW_AT_MOST_EVERY_SECONDS = 5.0
RETIRED_CHANNEL_SECONDS = 60.0  # the longest a call on a replaced channel waits


class Reply:
    """A call's answer to come."""

    def __init__(self, calls, correlation_id, channel):
        self._calls = calls
        self._correlation_id = correlation_id
        self._channel = channel
        self._event = calls.pending[correlation_id] = Event()

    def result(self, timeout=None):
        """What the service returned; or its error raised, a
        ``ServiceUnavailable`` if the broker went away meanwhile, a
        ``TimeoutError`` after ``timeout`` seconds (``None``: no limit)."""
        try:
            with eventlet.Timeout(timeout, TimeoutError("No reply in time.")):
                body = self._event.wait()
        except TimeoutError:
            self._calls.pending.pop(self._correlation_id, None)  # a late reply is dropped
            self._calls.no_reply_on(self._channel)
            raise
        if body["error"]:
            raise deserialize(body["error"])
        return body["result"]


class DirectReplyCalls(SharedExtension):
    """One process's RPC calls (see the module doc): ``call`` publishes a
    request and returns its :class:`Reply`."""

    def __init__(self):
        super().__init__()
        self.channel = None  # while connected
        self.pending = {}  # correlation id -> the reply's Event
        self._write = Semaphore()  # one writer a connection: frames never interleave
        self._connected = Event()
        self._renew = False  # replace the channel (by the green thread that reads)
        self._renewed_at = 0.0
        self._retired = []  # (when to close it, a replaced channel)

    def setup(self):
        config = self.container.config
        self.connection = kombu.Connection(
            config[AMQP_URI_CONFIG_KEY],
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
            heartbeat=config.get(HEARTBEAT_CONFIG_KEY, DEFAULT_HEARTBEAT),
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
        )
        self.exchange = get_rpc_exchange(config)
        self.serializer = config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER)

    def start(self):
        self._runner = self.container.spawn_managed_thread(self._run)
        with eventlet.Timeout(CONNECT_TIMEOUT_SECONDS, False):
            self._connected.wait()  # the first calls need not fail while it connects

    def stop(self):
        self._runner.kill()
        self._lost("The caller stopped.")
        self.connection.release()

    kill = stop

    def call(self, routing_key, payload, headers, expiration):
        """Publish ``payload`` to ``routing_key`` (``service.method``) on the
        RPC exchange; the request expires after ``expiration`` seconds."""
        channel = self.channel
        if channel is None:
            raise ServiceUnavailable(BROKER_AWAY)
        correlation_id = uuid.uuid4().hex
        content_type, content_encoding, body = kombu.serialization.dumps(payload, self.serializer)
        message = amqp.Message(
            body,
            content_type=content_type,
            content_encoding=content_encoding,
            application_headers=headers,
            delivery_mode=NON_PERSISTENT,
            correlation_id=correlation_id,
            reply_to=DIRECT_REPLY_TO,
            expiration=str(int(expiration * 1000)),
        )
        reply = Reply(self, correlation_id, channel)
        try:
            with self._write:
                channel.basic_publish(message, self.exchange.name, routing_key)
        except Exception as exc:
            self.pending.pop(correlation_id, None)
            log.warning("cannot publish an RPC request (%s: %s)", type(exc).__name__, exc)
            raise ServiceUnavailable(BROKER_AWAY) from None
        return reply

    def reply(self, reply_to, correlation_id, content_type, content_encoding, body):
        """Answer a request whose reply goes to ``reply_to``: by direct
        reply-to through the default exchange, as that asks; any other
        (``nameko shell``'s reply queues) through the RPC exchange."""
        channel = self.channel
        if channel is None:
            raise ConnectionError(BROKER_AWAY)
        message = amqp.Message(
            body,
            content_type=content_type,
            content_encoding=content_encoding,
            delivery_mode=NON_PERSISTENT,
            correlation_id=correlation_id,
        )
        exchange = "" if reply_to.startswith(DIRECT_REPLY_TO) else self.exchange.name
        with self._write:
            channel.basic_publish(message, exchange, reply_to)

    def no_reply_on(self, channel):
        """A call published on ``channel`` got no reply in time: the next
        calls go on a new channel (at most every few seconds)."""
        if (
            channel is self.channel
            and time.monotonic() - self._renewed_at > RENEW_AT_MOST_EVERY_SECONDS
        ):
            self._renew = True

    def _on_reply(self, message):
        reply = self.pending.pop(message.properties.get("correlation_id"), None)
        if reply is not None:  # else its caller stopped waiting (or is gone)
            properties = message.properties
            body = kombu.serialization.loads(
                message.body, properties["content_type"], properties.get("content_encoding")
            )
            reply.send(body)

    def _run(self):
        trouble, delay = Trouble(log), RECONNECT_DELAY_SECONDS[0]
        while True:
            try:
                self._serve(trouble)
            except Exception as exc:  # what the broker or the network said
                self._lost(BROKER_AWAY)
                trouble.occurred("RPC connection to the broker lost (%s); reconnecting", exc)
                self.connection.collect()  # the old socket, whatever state it is in
                eventlet.sleep(delay)
                delay = min(delay * 2, RECONNECT_DELAY_SECONDS[1])
            else:
                delay = RECONNECT_DELAY_SECONDS[0]

    def _serve(self, trouble):
        connection = self.connection
        # Each failed attempt moves on to the next broker AMQP_URI names.
        connection.ensure_connection(max_retries=len(connection.alt) or 1, interval_start=0)
        _no_drain_on_publish(connection.connection)
        self._renew, self._retired = False, []
        self.channel = self._new_channel(declare=True)
        if not self._connected.ready():
            self._connected.send()
        trouble.over("RPC connection to the broker made again")
        while True:
            with contextlib.suppress(TimeoutError):  # a second without replies
                connection.drain_events(timeout=1)
            with self._write:
                connection.heartbeat_check()
            if self._renew:
                self._renew_channel()
            while self._retired and self._retired[0][0] < time.monotonic():
                with self._write:
                    self._retired.pop(0)[1].close()

    def _new_channel(self, declare=False):
        # Opening a channel and consuming write frames and wait for the
        # broker's answers: only this green thread reads, writers wait.
        with self._write:
            channel = self.connection.channel()
            if declare:
                self.exchange(channel).declare()
            channel.basic_consume(DIRECT_REPLY_TO, no_ack=True, callback=self._on_reply)
        return channel

    def _renew_channel(self):
        self._renew, self._renewed_at = False, time.monotonic()
        log.warning("an RPC call got no reply in time; publishing on a new channel")
        retired, self.channel = self.channel, self._new_channel()
        self._retired.append((time.monotonic() + RETIRED_CHANNEL_SECONDS, retired))

    def _lost(self, why):
        """Every call in flight fails now (503), rather than at its deadline."""
        self.channel = None
        pending, self.pending = self.pending, {}
        for reply in pending.values():
            reply.send_exception(ServiceUnavailable(why))


def _no_drain_on_publish(amqp_connection):
    """py-amqp reads the connection (with a zero timeout) before each
    publish, in case the broker said "connection.blocked": ~17 µs a publish,
    and on a connection whose frames another green thread reads, a second
    reader that can take bytes of a frame that one is in the middle of. Our
    drain loop reads every frame, a blocked notice too; this tells py-amqp
    not to (the capability was already negotiated when it connected)."""
    properties = dict(amqp_connection.client_properties)
    capabilities = properties.get("capabilities") or {}
    properties["capabilities"] = {**capabilities, "connection.blocked": False}
    amqp_connection.client_properties = properties


class QuickReplyRpcConsumer(RpcConsumer):
    """nameko's ``RpcConsumer``, replying on the process's
    :class:`DirectReplyCalls` connection: one channel held open, no producer
    pool, no publisher confirms, transient replies (see the module doc)."""

    queue_consumer = PromptQueueConsumer()
    calls = DirectReplyCalls()

    def setup(self):
        super().setup()
        self.queue.queue_arguments = durable_queue_arguments(self.container.config)

    def handle_result(self, message, result, exc_info):
        error = serialize(exc_info[1]) if exc_info is not None else None
        # As the request came (content type); a result that cannot be
        # serialised becomes an error for the caller, not a dead container.
        properties = message.properties
        serializer = kombu.serialization.registry.type_to_name[properties["content_type"]]
        payload = {"result": result, "error": error}
        try:
            body = kombu.serialization.dumps(payload, serializer)
        except Exception:
            payload = {"result": None, "error": serialize(UnserializableValueError(result))}
            body = kombu.serialization.dumps(payload, serializer)
        try:
            self.calls.reply(properties["reply_to"], properties.get("correlation_id"), *body)
        except Exception as exc:  # a broker node lost, say: the caller's wait ends it
            log.warning("cannot send an RPC reply (%s: %s)", type(exc).__name__, exc)
        self.queue_consumer.ack_message(message)
        return result, exc_info


class QuickReplyRpc(SignatureOnce, Rpc):
    rpc_consumer = QuickReplyRpcConsumer()


def answers_database_errors(method):
    """``method`` (of a service), its database failures raised as the typed
    errors they mean (see the module doc); its signature kept, which nameko
    checks each call against."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (SQLAlchemyError, psycopg2.Error) as exc:
            error = service_error(exc, self.name)
            if error is None:
                raise
            raise error from exc

    call.__signature__ = inspect.signature(method)
    return call


def rpc(fn=None, **kwargs):
    """``@rpc``: see the module doc. Every RPC of a service must use it (one
    consumer per service queue)."""
    kwargs.setdefault("expected_exceptions", ServiceError)
    decorator = QuickReplyRpc.decorator(**kwargs)

    def decorate(fn):
        return decorator(answers_database_errors(fn))

    return decorate if fn is None else decorate(fn)
