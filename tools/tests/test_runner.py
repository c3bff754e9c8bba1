"""`make run`'s checks before it starts anything."""

import socket

import pytest

from tools import runner


def test_gateway_copies_default_to_the_cores(monkeypatch):
    monkeypatch.delenv("GATEWAY_PROCESSES", raising=False)
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 6)
    assert runner.gateway_copies() == 6
    monkeypatch.setenv("GATEWAY_PROCESSES", "2")
    assert runner.gateway_copies() == 2


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_a_bad_gateway_count_stops_with_a_message(monkeypatch, value):
    monkeypatch.setenv("GATEWAY_PROCESSES", value)
    with pytest.raises(SystemExit, match="GATEWAY_PROCESSES"):
        runner.gateway_copies()


def test_a_port_someone_answers_on_is_in_use():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert runner.port_in_use(port)
    assert not runner.port_in_use(port)
