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

:class:`RequestPublisher` is the other half, for callers that bound their
wait and learn whether a service runs from its queue's consumers (the
gateway's ``ServiceRpc``): requests are transient and unconfirmed too, and
not ``mandatory``, because a ``basic.return`` that nobody waits for would be
read by the next call on the pooled connection.

What a change guarantees lives in the service's database and outbox, never in
these messages: an unconfirmed request that is lost changed nothing.
"""

import functools
import inspect

import kombu.serialization
import psycopg2
from nameko.amqp.publish import Publisher
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    LOGIN_METHOD_CONFIG_KEY,
    NON_PERSISTENT,
)
from nameko.exceptions import UnserializableValueError, serialize
from nameko.rpc import ReplyListener, Rpc, RpcConsumer, get_rpc_exchange
from sqlalchemy.exc import SQLAlchemyError

from .database_errors import service_error
from .errors import ServiceError
from .queues import durable_queue_arguments
from .shutdown import PromptQueueConsumer


class RequestPublisher(Publisher):
    """RPC requests: transient, unconfirmed, never ``mandatory``."""

    use_confirms = False
    delivery_mode = NON_PERSISTENT

    def publish(self, payload, **kwargs):
        kwargs["mandatory"] = False
        return super().publish(payload, **kwargs)


class PromptReplyListener(ReplyListener):
    """nameko's ``ReplyListener`` (where a caller's replies arrive), on the
    :class:`~servicekit.shutdown.PromptQueueConsumer`."""

    queue_consumer = PromptQueueConsumer()


class ReplyPublisher(Publisher):
    use_confirms = False
    delivery_mode = NON_PERSISTENT


class QuickReplyRpcConsumer(RpcConsumer):
    """nameko's ``RpcConsumer``, replying through :class:`ReplyPublisher`."""

    queue_consumer = PromptQueueConsumer()

    def setup(self):
        super().setup()
        config = self.container.config
        self.queue.queue_arguments = durable_queue_arguments(config)
        self.exchange = get_rpc_exchange(config)
        self.publisher = ReplyPublisher(
            config[AMQP_URI_CONFIG_KEY],
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )

    def handle_result(self, message, result, exc_info):
        error = serialize(exc_info[1]) if exc_info is not None else None
        # As the request came (content type); a result that cannot be
        # serialised becomes an error for the caller, not a dead container.
        serializer = kombu.serialization.registry.type_to_name[message.properties["content_type"]]
        payload = {"result": result, "error": error}
        try:
            body = kombu.serialization.dumps(payload, serializer)
        except Exception:
            payload = {"result": None, "error": serialize(UnserializableValueError(result))}
            body = kombu.serialization.dumps(payload, serializer)
        content_type, content_encoding, data = body
        self.publisher.publish(
            data,
            exchange=self.exchange,
            routing_key=message.properties["reply_to"],
            correlation_id=message.properties.get("correlation_id"),
            content_type=content_type,
            content_encoding=content_encoding,
            serializer=None,
        )
        self.queue_consumer.ack_message(message)
        return result, exc_info


class QuickReplyRpc(Rpc):
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
