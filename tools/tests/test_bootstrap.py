"""The bootstrap's first look at RabbitMQ: not running, a refused login and a
missing vhost each told in one line (a stock RabbitMQ on this machine lets
``guest`` in)."""

import pytest
from kombu import Connection

from servicekit.config import load_config
from tests.support import free_port
from tools.bootstrap import reach_broker


def broker(**changes):
    url = Connection(load_config()["AMQP_URI"])
    parts = {
        "userid": url.userid, "password": url.password, "hostname": url.hostname,
        "port": url.port, "virtual_host": url.virtual_host, **changes,
    }  # fmt: skip
    return Connection(**parts).as_uri(include_password=True)


def stopped_with(uri, timeout=5):
    with pytest.raises(SystemExit) as stopped:
        reach_broker(uri, "make run", timeout)
    return str(stopped.value)


def test_the_configured_broker_is_reached():
    reach_broker(load_config()["AMQP_URI"], "make run", timeout=5)


def test_nothing_listening_is_not_running():
    said = stopped_with(broker(port=free_port()), timeout=0)
    assert said.startswith("make run: RabbitMQ is not running at amqp://")


def test_a_wrong_password_is_a_refused_login_at_once():
    said = stopped_with(broker(password="not the password"))
    assert "runs but refused the login" in said and "not the password" not in said


def test_a_missing_vhost_names_the_command_that_makes_it():
    said = stopped_with(broker(virtual_host="no-such-vhost"))
    assert "rabbitmqctl add_vhost no-such-vhost" in said
