"""The type of the durable queues the kit declares.

``AMQP_QUEUE_TYPE=quorum``: every durable queue (RPC, event, retry,
dead-letter) is a quorum queue, which a RabbitMQ cluster replicates; classic
otherwise. Per-process queues (the gateways' broadcasts, ``nameko shell``'s
replies) stay classic: they live and die with their process (the gateway's
RPC replies need no queue: direct reply-to). The type of an existing queue
cannot change: set it on a fresh vhost.
"""


def durable_queue_arguments(config, **arguments):
    """``queue_arguments`` of a durable queue, with the configured type."""
    if str(config.get("AMQP_QUEUE_TYPE") or "classic").lower() == "quorum":
        arguments["x-queue-type"] = "quorum"
    return arguments
