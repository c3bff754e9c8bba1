"""What operators rely on: the operations port, the logs, quorum queues, pruning."""

import json
import logging
import logging.config
import sys
import time
import uuid
from datetime import timedelta

import pytest
import requests
from nameko.extensions import DependencyProvider
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import func, select

from servicekit.base import ServiceBase
from servicekit.config import database_key, load_config, public_base_url
from servicekit.db import Database, utcnow
from servicekit.dead_letters import DeadLetters
from servicekit.errors import NotFound
from servicekit.logs import HTTP_CONNECTION, CorrelationIdFilter, Trouble
from servicekit.retention import Retention
from servicekit.retry import retrying_event_handler
from servicekit.rpc import rpc
from servicekit.writes import Changes
from tests.support import free_port

from .conftest import PROBE, Base, OutboxMessage, ProcessedEvent, RequestKey


class Probe(ServiceBase):
    """A service of the kit's pieces: a database, changes with an outbox, an
    RPC, a retried handler with parked events, a table pruned after 30 days."""

    name = PROBE

    db = Database(Base)
    change = Changes(OutboxMessage, RequestKey)
    dead_letters = DeadLetters()
    processed_events = Retention(ProcessedEvent, "processed_at", days=30)

    @rpc
    def health(self):
        return self.db.health()

    @rpc
    def get(self, item_id):
        raise NotFound(f"No item {item_id!r}.")

    @retrying_event_handler("elsewhere", "thing_happened")
    def on_thing(self, payload):
        pass


@pytest.fixture
def probe_with_ops_port(kit_config, container_factory):
    port = free_port()
    container = container_factory(Probe, {**kit_config, "OPS_PORT": port})
    container.start()
    return f"http://127.0.0.1:{port}", kit_config


def test_the_operations_port_serves_metrics_and_probes(probe_with_ops_port):
    base, config = probe_with_ops_port
    assert requests.get(f"{base}/livez", timeout=5).status_code == 200
    assert requests.get(f"{base}/readyz", timeout=5).text == "ready\n"
    with ServiceRpcProxy(PROBE, config) as probe:
        probe.health()
        with pytest.raises(NotFound):
            probe.get("nope")
    metrics = requests.get(f"{base}/metrics", timeout=5).text
    assert (
        f'localnews_workers_total{{entrypoint="health",outcome="ok",service="{PROBE}"}}' in metrics
    )
    assert f'entrypoint="get",outcome="NOT_FOUND",service="{PROBE}"' in metrics
    assert f'localnews_outbox_backlog{{service="{PROBE}"}}' in metrics
    assert requests.get(f"{base}/other", timeout=5).status_code == 404


def test_readyz_says_why_while_the_database_is_away(kit_config, container_factory):
    port = free_port()
    broken = {**kit_config, "OPS_PORT": port, "DB_URIS": {**kit_config["DB_URIS"]}}
    broken["DB_URIS"][database_key(PROBE)] = (
        "postgresql://localnews:localnews@localhost:5432/no_such_db"
    )
    container = container_factory(Probe, broken)
    container.start()
    answer = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
    assert answer.status_code == 503
    assert answer.text.startswith("not ready: the database: database missing: ")
    assert "no_such_db" in answer.text


class Waiting(DependencyProvider):
    """A dependency that says what it still waits for, as the gateway's
    authenticator does until it has loaded the revoked tokens."""

    reason = "the weather"

    def waits_for(self):
        return self.reason


class WaitingProbe(Probe):
    waiting = Waiting()


def test_readyz_reports_what_a_dependency_still_waits_for(kit_config, container_factory):
    port = free_port()
    container = container_factory(WaitingProbe, {**kit_config, "OPS_PORT": port})
    container.start()
    answer = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
    assert (answer.status_code, answer.text) == (503, "not ready: the weather\n")
    Waiting.reason = ""
    try:
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10).text == "ready\n"
    finally:
        Waiting.reason = "the weather"


def record(msg, name="nameko.containers", level=logging.WARNING, exc_info=None):
    return logging.LogRecord(name, level, __file__, 1, msg, (), exc_info)


def test_an_expected_error_is_one_info_line():
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    expected = record("(expected) error handling worker x: No user", exc_info=exc_info)
    CorrelationIdFilter().filter(expected)
    assert (expected.levelname, expected.exc_info) == ("INFO", None)
    unexpected = record("error handling worker x: boom", level=logging.ERROR, exc_info=exc_info)
    CorrelationIdFilter().filter(unexpected)
    assert (unexpected.levelname, unexpected.exc_info) == ("ERROR", exc_info)


def test_connections_closed_at_a_stop_are_counted_not_listed():
    def kept(msg, *args):
        line = logging.LogRecord("nameko.containers", logging.WARNING, __file__, 1, msg, args, None)
        return CorrelationIdFilter().filter(line)

    assert kept("killing %s managed thread(s)", 1000)
    assert not kept("killing managed thread `%s`", HTTP_CONNECTION)
    assert kept("killing managed thread `%s`", "run")  # any other thread is still named


class Recorder(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_a_lasting_trouble_is_said_once_and_its_end_once():
    log = logging.getLogger("test.trouble")
    log.setLevel(logging.DEBUG)
    recorder = Recorder()
    log.addHandler(recorder)
    trouble = Trouble(log)
    for _ in range(5):
        trouble.occurred("broker down")
    trouble.over("broker back")
    trouble.over("broker back")
    log.removeHandler(recorder)
    levels = [(r.levelname, r.getMessage()) for r in recorder.records]
    assert levels.count(("WARNING", "broker down")) == 1
    assert levels.count(("INFO", "broker back")) == 1


def test_json_log_lines_carry_service_and_correlation():
    logging_config = load_config()["LOGGING"]
    configurator = logging.config.DictConfigurator(logging_config)
    formatter = configurator.configure_formatter(logging_config["formatters"]["json"])
    line = record("hello", name="x", level=logging.INFO)
    CorrelationIdFilter().filter(line)
    payload = json.loads(formatter.format(line))
    assert {"time", "level", "service", "logger", "correlation_id", "entrypoint"} <= set(payload)
    assert payload["message"] == "hello"


def test_the_public_base_url_follows_the_gateway_port():
    assert public_base_url({"WEB_SERVER_ADDRESS": "0.0.0.0:8123"}) == "http://localhost:8123"
    set_url = {"WEB_SERVER_ADDRESS": "0.0.0.0:8123", "PUBLIC_BASE_URL": "https://news.example/"}
    assert public_base_url(set_url) == "https://news.example"


def test_quorum_queues_when_configured(kit_config, container_factory, rabbit_manager):
    config = {**kit_config, "AMQP_QUEUE_TYPE": "quorum"}
    container_factory(Probe, config).start()
    vhost = config["AMQP_URI"].rsplit("/", 1)[-1]
    types = {q["name"]: q.get("type") for q in rabbit_manager.get_queues(vhost)}
    assert types[f"rpc-{PROBE}"] == "quorum"
    handler = f"evt-elsewhere-thing_happened--{PROBE}.on_thing"
    assert types[handler] == types[f"{handler}.dead"] == types[f"{handler}.retry.1000"] == "quorum"
    with ServiceRpcProxy(PROBE, config) as probe:  # and it works
        assert probe.health() == "ok"


def test_processed_events_are_pruned_after_their_retention(
    kit_config, container_factory, kit_session
):
    session = kit_session()
    old, recent = utcnow() - timedelta(days=31), utcnow() - timedelta(days=1)
    for when in (old, recent):
        session.add(ProcessedEvent(event_id=uuid.uuid4(), handler="h", processed_at=when))
    session.commit()
    container = container_factory(Probe, kit_config)
    container.start()
    deadline = time.monotonic() + 10
    while session.scalar(select(func.count()).select_from(ProcessedEvent)) != 1:
        assert time.monotonic() < deadline, "old processed events still there"
        session.rollback()
        time.sleep(0.1)


def test_a_retried_handler_failure_is_its_own_line_only():
    class Handler:
        logs_its_failures = True  # as servicekit.retry's handlers

    class WorkerCtx:
        entrypoint = Handler()

    line = logging.LogRecord(
        "nameko.containers", logging.WARNING, __file__, 1,
        "(expected) error handling worker %s: %s", (WorkerCtx(), "SMTP down"), None,
    )  # fmt: skip
    assert not CorrelationIdFilter().filter(line)  # the retry says it, with the next try
    WorkerCtx.entrypoint = object()  # any other entrypoint: one INFO line
    assert CorrelationIdFilter().filter(line) and line.levelname == "INFO"
