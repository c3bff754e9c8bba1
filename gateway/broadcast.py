"""Events that every gateway copy must hear, on a connection of their own.

Each gateway copy keeps state made from events: its read cache and the
tokens it refuses. ``@broadcast`` is nameko's ``BROADCAST`` event handler: a
queue per copy, exclusive, gone when the copy's connection drops. Events
published while it is gone are lost to that copy, so after a reconnect the
consumer tells its ``on_reconnect`` listeners, which start again from a state
they can trust (the cache empties, revocations are loaded again).
"""

import logging

from nameko.events import BROADCAST, EventHandler

from servicekit.entrypoints import SignatureOnce
from servicekit.shutdown import PromptQueueConsumer

log = logging.getLogger(__name__)


class BroadcastConsumer(PromptQueueConsumer):
    """A queue consumer (its own connection) that reports reconnects."""

    def __init__(self):
        super().__init__()
        self._listeners = []
        self._connected_before = False

    def on_reconnect(self, listener):
        """Call ``listener()`` after each reconnection (not the first connection)."""
        self._listeners.append(listener)

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        # kombu calls this after every (re)connection, consumers declared.
        super().on_consume_ready(connection, channel, consumers, **kwargs)
        if self._connected_before:
            log.warning("broadcast consumer reconnected; events meanwhile were missed")
            for listener in self._listeners:
                listener()
        self._connected_before = True


class BroadcastHandler(SignatureOnce, EventHandler):
    """``@broadcast("articles", "article_updated")``: every copy gets every event."""

    queue_consumer = BroadcastConsumer()

    def __init__(self, source_service, event_type, **kwargs):
        super().__init__(
            source_service, event_type, handler_type=BROADCAST, reliable_delivery=False, **kwargs
        )


broadcast = BroadcastHandler.decorator
