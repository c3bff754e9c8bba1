"""servicekit.shutdown in a real container: a graceful stop acks the work it
lets finish (the process-level SIGTERM bound is in tests/faults)."""

from kombu import Connection
from nameko.standalone.rpc import ClusterRpcProxy

from servicekit.tests.slow_service import SlowService
from tests.support import eventually


def waiting_requests(config):
    with Connection(config["AMQP_URI"]) as conn:
        return conn.default_channel.queue_declare("rpc-slow", passive=True).message_count


def test_stop_lets_the_call_in_flight_finish_and_acks_it(config, container_factory, capsys):
    container = container_factory(SlowService, config)
    container.start()
    with ClusterRpcProxy(config, timeout=10) as n:
        # Longer than the consumer loop takes to notice the stop (a second or two).
        reply = n.slow.work.call_async("in-flight", 2.5)
        eventually(lambda: "started in-flight" in capsys.readouterr().out)
        container.stop()
        assert isinstance(reply.result(), int)

    # Without the guard the consumer's connection closed before the ack:
    # the answered request went back to the queue, to run again.
    assert waiting_requests(config) == 0
