"""A graceful stop that acks the work it lets finish, within a bounded time.

Two gaps in nameko 2.14's graceful stop (``nameko run`` on SIGTERM):

- When the entrypoints stop, the shared ``QueueConsumer`` loses its last
  consumer and closes its connection at once, while workers are still
  running. Their acks are then dropped, so a request that was answered (or an
  event that was handled) goes back to the broker and runs a second time.
  :class:`GracefulShutdown` stays registered with the ``QueueConsumer``, on a
  private queue of its own, until the workers are done: it is a dependency,
  and nameko stops dependencies after it waited for the workers.
- That wait has no end: one hung worker (or a broker that is down) keeps the
  process alive for ever. Under ``nameko run``, SIGTERM now also starts a
  timer; after ``SHUTDOWN_GRACE_SECONDS`` (default 20) the process exits with
  status 1. The unfinished workers' messages are unacked, so the broker gives
  them to another copy.

And one that makes every stop slow: nameko's consumer loop looks for
consumers to cancel once a second, so each step of a stop waits up to a
second per consumer (an idle service took 4-5 s to stop).
:class:`PromptQueueConsumer` looks ten times a second; every consumer of the
project's services is one.
"""

import os
import signal
import uuid

from eventlet import patcher
from kombu import Queue
from nameko.extensions import DependencyProvider
from nameko.messaging import QueueConsumer

GRACE_CONFIG_KEY = "SHUTDOWN_GRACE_SECONDS"
# Kubernetes sends SIGKILL 30 s after SIGTERM: exit on our own terms before.
DEFAULT_GRACE_SECONDS = 20.0

# How often a consumer loop with nothing to do looks for work to stop.
STOP_CHECK_SECONDS = 0.1

_sigterm_bounded = False


class PromptQueueConsumer(QueueConsumer):
    """nameko's ``QueueConsumer``, checking for consumers to cancel every
    ``STOP_CHECK_SECONDS`` instead of every second."""

    def consume(self, *args, **kwargs):
        kwargs.setdefault("safety_interval", STOP_CHECK_SECONDS)
        return super().consume(*args, **kwargs)


class GracefulShutdown(DependencyProvider):
    """Declare it on every service (``servicekit.base.ServiceBase`` does)."""

    queue_consumer = PromptQueueConsumer()

    def setup(self):
        name = self.container.service_name
        self.grace = float(self.container.config.get(GRACE_CONFIG_KEY, DEFAULT_GRACE_SECONDS))
        self.queue = Queue(
            f"{name}.shutdown-guard.{uuid.uuid4().hex}", exclusive=True, durable=False
        )
        self.queue_consumer.register_provider(self)

    def start(self):
        bound_sigterm(self.grace)

    def stop(self):
        self.queue_consumer.unregister_provider(self)

    def handle_message(self, body, message):  # nothing is ever sent to it
        self.queue_consumer.ack_message(message)


def bound_sigterm(grace):
    """Make the process exit ``grace`` seconds after a SIGTERM, stopped or not.

    Only where a SIGTERM handler is installed already (``nameko run``'s
    graceful stop), which is then still called: a test process, where SIGTERM
    kills at once, is left alone. Once per process.
    """
    global _sigterm_bounded
    graceful_stop = signal.getsignal(signal.SIGTERM)
    if _sigterm_bounded or not callable(graceful_stop):
        return
    # A real OS thread, not a green one: it fires even when the hub is stuck.
    os_threading = patcher.original("threading")

    def on_sigterm(signum, frame):
        timer = os_threading.Timer(grace, _exit_now, args=(grace,))
        timer.daemon = True
        timer.start()
        graceful_stop(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    _sigterm_bounded = True


def _exit_now(grace):
    # Not the logging module: its locks are eventlet's, unusable from here.
    message = f"nameko: still stopping {grace:g} s after SIGTERM (a worker hung?); exiting now\n"
    os.write(2, message.encode())
    os._exit(1)
