"""The lean container runs nameko's worker lifecycle: the same hooks, in the
same order, the same results and failures."""

import logging

import pytest
from nameko.extensions import DependencyProvider
from nameko.testing.services import entrypoint_hook

from servicekit.containers import LeanContainer
from servicekit.errors import NotFound
from servicekit.rpc import rpc

calls = []


class Recorder(DependencyProvider):
    def __init__(self, name):
        self.name = name

    def get_dependency(self, worker_ctx):
        calls.append((self.name, "get_dependency"))
        return self.name

    def worker_setup(self, worker_ctx):
        calls.append((self.name, "worker_setup"))

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        calls.append((self.name, "worker_result", result, exc_info and exc_info[0]))

    def worker_teardown(self, worker_ctx):
        calls.append((self.name, "worker_teardown"))


class OnlyTeardown(DependencyProvider):
    def worker_teardown(self, worker_ctx):
        calls.append(("only_teardown", "worker_teardown"))


class Probe:
    name = "probe"
    first = Recorder("first")
    second = Recorder("second")
    only_teardown = OnlyTeardown()

    @rpc
    def works(self, value):
        calls.append((self.first, "ran", self.second))
        return value * 2

    @rpc
    def not_found(self):
        raise NotFound("no such thing")

    @rpc
    def breaks(self):
        raise RuntimeError("broken")


@pytest.fixture
def probe(config, container_factory):
    assert config["SERVICE_CONTAINER_CLS"] == "servicekit.containers.LeanContainer"
    container = container_factory(Probe, config)
    assert isinstance(container, LeanContainer)
    container.start()
    calls.clear()
    return container


def phases(recorded):
    """The phases in the order they ran, and who took part in each
    (dependencies are a set: their order within a phase is not fixed)."""
    order, members = [], {}
    for name, phase, *details in recorded:
        if not order or order[-1] != phase:
            order.append(phase)
        members.setdefault(phase, set()).add((name, *details))
    return order, members


def test_a_worker_runs_every_hook_in_nameko_order(probe):
    with entrypoint_hook(probe, "works") as works:
        assert works(21) == 42
    order, members = phases(calls)
    assert order == ["get_dependency", "worker_setup", "ran", "worker_result", "worker_teardown"]
    assert members["get_dependency"] == {("first",), ("second",)}
    assert members["worker_setup"] == {("first",), ("second",)}
    assert members["ran"] == {("first", "second")}
    assert members["worker_result"] == {("first", 42, None), ("second", 42, None)}
    assert members["worker_teardown"] == {("first",), ("second",), ("only_teardown",)}


def test_an_expected_error_is_a_warning_and_reaches_the_hooks(probe, caplog):
    with (
        caplog.at_level(logging.WARNING),
        entrypoint_hook(probe, "not_found") as not_found,
        pytest.raises(NotFound),
    ):
        not_found()
    order, members = phases(calls)
    assert order == ["get_dependency", "worker_setup", "worker_result", "worker_teardown"]
    assert members["worker_result"] == {("first", None, NotFound), ("second", None, NotFound)}
    (record,) = [r for r in caplog.records if "(expected) error handling worker" in r.message]
    assert record.levelno == logging.WARNING


def test_an_unexpected_error_is_logged_with_its_traceback(probe, caplog):
    with (
        caplog.at_level(logging.WARNING),
        entrypoint_hook(probe, "breaks") as breaks,
        pytest.raises(RuntimeError),
    ):
        breaks()
    order, members = phases(calls)
    assert order == ["get_dependency", "worker_setup", "worker_result", "worker_teardown"]
    assert members["worker_result"] == {
        ("first", None, RuntimeError),
        ("second", None, RuntimeError),
    }
    (record,) = [r for r in caplog.records if "error handling worker" in r.message]
    assert record.levelno == logging.ERROR and record.exc_info[0] is RuntimeError
