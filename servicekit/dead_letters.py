"""Parked events, for operators: list, replay, discard.

A handler built on :mod:`servicekit.retry` parks a message it could not
handle in ``<queue>.dead``, with its error. A service that has such handlers
declares ``dead_letters = DeadLetters()`` and the three operator RPCs::

    dead_letters_list, dead_letters_replay, dead_letters_discard = dead_letter_rpcs()

then ``n.rpc.<service>.dead_letters_list()``, ``.dead_letters_replay(id)``,
``.dead_letters_discard(id)`` (no id: every parked message).
"""

import logging
from contextlib import closing
from datetime import datetime, timedelta
from itertools import islice

from kombu import Connection
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.extensions import DependencyProvider

from .db import utcnow
from .retention import keep_doing
from .retry import (
    ERROR_HEADER,
    PARKED_AT_HEADER,
    RetryingEventHandler,
    attempt_of,
    clean_headers,
    confirming_publisher,
    republish,
)
from .rpc import rpc

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 14.0
PRUNE_INTERVAL_SECONDS = 3600.0


class DeadLetters(DependencyProvider):
    """The service's parked messages, for operators.

    ``list(limit)`` describes them; ``replay(message_id=None)`` sends them
    back to their handler with the attempt counter reset, and
    ``discard(message_id=None)`` deletes them (``None``: all). Messages parked
    longer than ``DEAD_LETTER_RETENTION_DAYS`` (14) are discarded, hourly.
    """

    def setup(self):
        config = self.container.config
        self.amqp_uri = config[AMQP_URI_CONFIG_KEY]
        self.publisher = confirming_publisher(self.amqp_uri)
        days = float(config.get("DEAD_LETTER_RETENTION_DAYS") or DEFAULT_RETENTION_DAYS)
        self.retention = timedelta(days=days)

    def start(self):
        self._pruner = self.container.spawn_managed_thread(self._prune_forever)

    def stop(self):
        self._pruner.kill()

    kill = stop

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

    def prune(self):
        """Discard what was parked before the retention; how many. Messages
        are parked in order, so the oldest are first in each queue."""
        oldest_kept = utcnow() - self.retention
        count = 0
        with closing(self._parked()) as parked:
            for _, message in parked:
                parked_at = message.headers.get(PARKED_AT_HEADER)
                if parked_at and datetime.fromisoformat(parked_at) < oldest_kept:
                    message.ack()
                    count += 1
        if count:
            log.warning("discarded %d message(s) parked over %s ago", count, self.retention)
        return count

    def _prune_forever(self):
        def prune_once():
            self.prune()  # looks at every parked message: nothing is left for later

        keep_doing("parked messages: pruning", prune_once, PRUNE_INTERVAL_SECONDS)

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
    """The three operator RPCs (see the module doc). Functions, not a base
    class: ``nameko run <module>`` takes every class with entrypoints in the
    module for a service, and would take a mixin too."""

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
