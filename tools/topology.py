"""Event queues, declared before any service starts.

An event published while no queue is bound to its exchange is dropped by the
broker. A subscriber's durable queue normally appears when the subscriber
first starts, so an event sent before then (the admin's ``user_added`` on a
fresh install, say) would be lost. The bootstrap step declares every
reliable handler's queue up front, from the service classes themselves (of
the type ``AMQP_QUEUE_TYPE`` says: ``servicekit.queues``).
"""

import importlib

from kombu import Connection
from nameko.containers import ServiceContainer
from nameko.events import BROADCAST, EventHandler


def service_classes(module_name):
    """The nameko service classes defined in ``module_name``."""
    module = importlib.import_module(module_name)
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and obj.__module__ == module_name and hasattr(obj, "name")
    ]


def event_queues(service_cls, config):
    """kombu ``Queue``s (with exchange and binding) of the class's handlers."""
    container = ServiceContainer(service_cls, config)
    queues = []
    for entrypoint in container.entrypoints:
        if isinstance(entrypoint, EventHandler) and entrypoint.handler_type != BROADCAST:
            entrypoint.setup()
            queues.append(entrypoint.queue)
    return queues


def declare_event_queues(config, service_classes):
    with Connection(config["AMQP_URI"]) as conn:
        channel = conn.default_channel
        for service_cls in service_classes:
            for queue in event_queues(service_cls, config):
                queue(channel).declare()
