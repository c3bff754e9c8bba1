"""RPC from the gateway, shaped like nameko's ``RpcProxy``, with deadlines.

``articles_rpc = ServiceRpc("articles")`` on the gateway class, then
``self.articles_rpc.create(body)`` in a route, or
``self.articles_rpc.health.call_async()`` and ``.result()`` later.

- A service with no consumer on its queue is a 503 at once, instead of a
  request waiting in a queue nobody reads: :class:`ConsumerPoll`, one per
  process, checks the queues' consumer counts every second.
- A service that does not answer within ``RPC_TIMEOUT_SECONDS`` is a 504;
  the request message expires at the same deadline, so a service that comes
  back later does not run requests whose callers gave up.
- Requests are transient and unconfirmed, and replies come by RabbitMQ's
  direct reply-to (``servicekit.rpc.DirectReplyCalls``): the two points
  above say all a confirm would; a broker that cannot be reached, or is
  lost while a call waits, is a 503 at once.
"""

import contextlib
import logging
import time

import eventlet
from amqp.exceptions import NotFound
from kombu import Connection
from nameko.extensions import DependencyProvider, SharedExtension
from nameko.messaging import HeaderEncoder
from nameko.rpc import RPC_QUEUE_TEMPLATE

from servicekit.errors import ServiceUnavailable
from servicekit.logs import Trouble
from servicekit.rpc import DirectReplyCalls

from .errors import GatewayTimeout

log = logging.getLogger(__name__)

CONSUMER_POLL_SECONDS = 1.0


class ConsumerPoll(SharedExtension):
    """How many consumers each watched service's RPC queue has."""

    def __init__(self):
        super().__init__()
        # Here, not in setup(): proxies call watch() from their own setup().
        self.watched = set()
        self.consumers = {}  # service name -> consumer count; unknown = try

    def setup(self):
        self.amqp_uri = self.container.config["AMQP_URI"]

    def watch(self, service_name):
        self.watched.add(service_name)

    def start(self):
        self._poller = self.container.spawn_managed_thread(self._poll)

    def stop(self):
        self._poller.kill()

    kill = stop

    def is_running(self, service_name):
        if self.consumers.get(service_name, 1):
            return True
        # Polled as down: check again now, so a service that just came back
        # is used at once (this costs a connection only while it is down).
        try:
            with self._connect() as conn:
                self.consumers[service_name] = _consumer_count(conn, service_name)
        except Exception:
            return True  # the call itself will say what is wrong
        return self.consumers[service_name] > 0

    def _connect(self):
        # Each failed attempt moves on to the next broker AMQP_URI names.
        conn = Connection(self.amqp_uri, connect_timeout=2)
        conn.ensure_connection(max_retries=len(conn.alt) or 1, interval_start=0)
        return conn

    def _poll(self):
        trouble = Trouble(log)
        while True:
            try:
                with self._connect() as conn:
                    while True:
                        for name in self.watched:
                            self.consumers[name] = _consumer_count(conn, name)
                        trouble.over("polling RPC consumers again")
                        eventlet.sleep(CONSUMER_POLL_SECONDS)
            except Exception as exc:
                trouble.occurred("cannot poll RPC consumers (%s); will retry", exc)
                self.consumers.clear()
                eventlet.sleep(CONSUMER_POLL_SECONDS)


def _consumer_count(conn, service_name):
    # A failed passive declare closes its channel, hence one channel a check.
    channel = conn.channel()
    try:
        return channel.queue_declare(RPC_QUEUE_TEMPLATE.format(service_name), passive=True)[2]
    except NotFound:  # no queue: the service never ran on this broker
        return 0
    finally:
        with contextlib.suppress(Exception):
            channel.close()


class ServiceRpc(DependencyProvider):
    """``self.<name>_rpc.<method>(...)``: see the module doc."""

    calls = DirectReplyCalls()
    consumer_poll = ConsumerPoll()

    def __init__(self, service_name):
        self.service_name = service_name

    def setup(self):
        self.timeout = float(self.container.config["RPC_TIMEOUT_SECONDS"])
        self.consumer_poll.watch(self.service_name)

    def get_dependency(self, worker_ctx):
        return _ServiceProxy(self, worker_ctx)


class _ServiceProxy:
    def __init__(self, provider, worker_ctx):
        self._provider = provider
        self._worker_ctx = worker_ctx

    def __getattr__(self, method_name):
        return DeadlineMethodProxy(self._provider, self._worker_ctx, method_name)


class DeadlineMethodProxy(HeaderEncoder):
    """As nameko's ``MethodProxy``: ``proxy(...)`` waits for the result,
    ``proxy.call_async(...)`` returns a reply to ``.result()`` later; both
    end at the deadline."""

    def __init__(self, provider, worker_ctx, method_name):
        self.provider = provider
        self.worker_ctx = worker_ctx
        self.method_name = method_name

    def __call__(self, *args, **kwargs):
        return self.call_async(*args, **kwargs).result()

    def call_async(self, *args, **kwargs):
        provider = self.provider
        service_name = provider.service_name
        if not provider.consumer_poll.is_running(service_name):
            raise ServiceUnavailable(f"The {service_name} service is not running.")
        reply = provider.calls.call(
            f"{service_name}.{self.method_name}",
            {"args": args, "kwargs": kwargs},
            self.get_message_headers(self.worker_ctx),  # the request id, the call stack
            provider.timeout,
        )
        return _DeadlineReply(reply, service_name, provider.timeout)


class _DeadlineReply:
    def __init__(self, reply, service_name, timeout):
        self._reply = reply
        self._service_name = service_name
        self._deadline = time.monotonic() + timeout

    def result(self):
        try:
            return self._reply.result(timeout=max(self._deadline - time.monotonic(), 0))
        except TimeoutError:
            raise GatewayTimeout(
                f"The {self._service_name} service did not answer in time."
            ) from None
