"""RPC replies (servicekit.rpc): unconfirmed, transient, and never fatal."""

import kombu
import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy

from servicekit.errors import NotFound
from servicekit.rpc import DirectReplyCalls, rpc


class Replies:
    name = "replies"

    @rpc
    def echo(self, value):
        return value

    @rpc
    def missing(self):
        raise NotFound("No such thing.", {"id": ["Unknown."]})

    @rpc
    def not_json(self):
        return object()  # no serializer takes it


@pytest.fixture
def replies(config, container_factory):
    container_factory(Replies, config).start()
    with ServiceRpcProxy("replies", config) as proxy:
        yield proxy


def test_results_and_typed_errors_come_back(replies):
    assert replies.echo({"a": [1, "ü"]}) == {"a": [1, "ü"]}
    with pytest.raises(NotFound) as err:
        replies.missing()
    assert err.value.details == {"id": ["Unknown."]}


def test_an_unserializable_result_is_an_error_for_the_caller_not_a_dead_service(replies):
    with pytest.raises(RemoteError) as err:
        replies.not_json()
    assert err.value.exc_type == "UnserializableValueError"
    assert replies.echo(1) == 1  # still serving


def test_replies_go_out_on_a_held_connection_whose_publishes_never_read(config, container_factory):
    container = container_factory(Replies, config)
    container.start()
    with ServiceRpcProxy("replies", config) as proxy:
        assert proxy.echo("held") == "held"
    (calls,) = [ext for ext in container.extensions if isinstance(ext, DirectReplyCalls)]
    held = calls.connection.connection  # py-amqp's, under kombu's
    assert held.client_properties["capabilities"]["connection.blocked"] is False
    # That connection only: py-amqp reads before a publish on any other.
    with kombu.Connection(config["AMQP_URI"]) as other:
        other.connect()
        assert other.connection.client_properties["capabilities"]["connection.blocked"] is True
