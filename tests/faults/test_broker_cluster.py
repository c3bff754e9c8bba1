"""Scenario: a RabbitMQ cluster loses the node every process is connected to.

A cluster of three nodes of the test's own (:mod:`.rabbit_cluster`), quorum
queues (``AMQP_QUEUE_TYPE=quorum``), and the whole backend as ``make run``
starts it (``python -m tools.runner``: every service and the gateway as
``nameko run`` processes), with ``AMQP_URI`` naming the three nodes in
kombu's failover form. Every process connects to the first node, which also
leads every queue they declare.

Under a steady load of article creates and reads through the HTTP API, the
first node is killed (SIGKILL of its Erlang VM: a crash), left down for
``LOSS_SECONDS``, then started again, the load going on throughout. Every
answer is recorded. Writes must be answered again within
``RECOVERY_SECONDS`` of the loss, with nothing but 503 and 504 meanwhile;
``/health`` must answer 200 on two nodes; every article answered 2xx must be
stored, and every article stored mailed exactly once; once the node is back
the load goes on with 2xx only.
"""

import collections
import contextlib
import datetime
import json
import os
import re
import signal
import subprocess
import time

import eventlet
import pytest
import requests
from sqlalchemy import select

from articles.models import Article
from servicekit.config import database_key, load_config
from tests.support import eventually, free_port
from tools import SERVICE_NAMES

from .conftest import mails_per_article, queue_state, service_env, start_runner
from .rabbit_cluster import die_with_parent

pytestmark = pytest.mark.faults

WARM_UP_SECONDS = 5  # of load before the loss
LOSS_SECONDS = 25  # the node is down this long (plus its restart)
AFTER_SECONDS = 15  # of load once the node is back
RECOVERY_SECONDS = 10  # writes answered (2xx) again within this long of the loss
WRITERS = 2  # concurrent writers, each a create after the other
WRITE_PAUSE = 0.1  # seconds between a writer's answer and its next create
READ_PAUSE = 0.2
HEALTH_PAUSE = 1.0
REQUEST_TIMEOUT = 30  # the gateway answers 504 after RPC_TIMEOUT_SECONDS (5) itself
READY_TIMEOUT = 120
MAIL_TIMEOUT = 120  # only against a hang
QUIET_SECONDS = 3  # after the last mail expected: a duplicate would arrive by then
ALLOWED_DURING_LOSS = {503, 504}


class Stack:
    """``python -m tools.runner`` (``make run``) on the cluster; output in ``log_path``."""

    def __init__(self, env, log_path):
        self.port = int(env["GATEWAY_PORT"])
        self.api = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        # The runner stops every child on SIGTERM.
        self.process = start_runner(env, log_path, preexec_fn=die_with_parent)

    def output(self):
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        while "runner: ready" not in self.output():
            assert self.process.poll() is None, self.output()[-5000:]
            assert time.monotonic() < deadline, (
                f"not ready in {timeout} s:\n{self.output()[-5000:]}"
            )
            time.sleep(0.2)

    def pids(self):
        return dict(re.findall(r"runner: started (\S+) \(pid (\d+)\)", self.output()))

    def restarts(self):
        return re.findall(r"runner: (\S+) exited with (\S+);", self.output())

    def stop(self):
        """Gracefully (the runner stops every child), else killed: nothing is left."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(30)
        if self.process.poll() is None:  # it did not stop its children: they go too
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            for pid in self.pids().values():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(int(pid), signal.SIGKILL)


@pytest.fixture
def cluster_stack(rabbit_cluster, test_database_urls, clean_databases, smtp_server, tmp_path):
    """The whole backend on ``rabbit_cluster``, mailing to ``smtp_server``."""
    config = load_config()
    config["AMQP_URI"] = rabbit_cluster.amqp_uri()
    config["DB_URIS"] = {database_key(name): url for name, url in test_database_urls.items()}
    env = {
        **service_env(config),
        "AMQP_QUEUE_TYPE": "quorum",
        "GATEWAY_PORT": str(free_port()),
        "GATEWAY_PROCESSES": "1",
        "SMTP_HOST": smtp_server.host,
        "SMTP_PORT": str(smtp_server.port),
        "RETRY_DELAYS_SECONDS": "0.5,1,2,4,8",
        "SHUTDOWN_GRACE_SECONDS": "5",
    }
    started = time.monotonic()
    stack = Stack(env, tmp_path / "stack.log")
    try:
        stack.wait_ready()
        stack.ready_seconds = time.monotonic() - started
        stack.config = config
        yield stack
    finally:
        stack.stop()


class Load:
    """Writers, a reader and a ``/health`` poller against the API; every
    answer recorded as ``(kind, sent, answered, status)``,
    ``status`` an HTTP status or the name of the error that replaced it."""

    def __init__(self, api, token):
        self.api = api
        self.headers = {"Authorization": f"Bearer {token}"}
        self.records = []
        self.created = []  # ids of the articles answered 2xx
        self.titles = {}  # title -> the status its create got
        self.running = True
        self.pool = eventlet.GreenPool()

    def call(self, session, kind, method, path, **kwargs):
        sent = time.monotonic()
        try:
            response = session.request(method, self.api + path, timeout=REQUEST_TIMEOUT, **kwargs)
            status = response.status_code
        except requests.RequestException as exc:
            response, status = None, type(exc).__name__
        self.records.append((kind, sent, time.monotonic(), status))
        return response, status

    def writer(self, number):
        with requests.Session() as session:
            for n in range(1_000_000):
                if not self.running:
                    return
                title = f"Cluster write {number}-{n}"
                article = {"title": title, "description": "While a node was lost", "body": "."}
                response, self.titles[title] = self.call(
                    session, "write", "POST", "/api/articles", json=article, headers=self.headers
                )
                if response is not None and response.ok:
                    self.created.append(response.json()["id"])
                time.sleep(WRITE_PAUSE)

    def reader(self):
        with requests.Session() as session:
            while self.running:
                self.call(session, "read", "GET", "/api/articles?limit=5")
                if self.created:
                    self.call(session, "read", "GET", f"/api/articles/{self.created[-1]}")
                time.sleep(READ_PAUSE)

    def health(self):
        with requests.Session() as session:
            while self.running:
                self.call(session, "health", "GET", "/health")
                time.sleep(HEALTH_PAUSE)

    def start(self):
        for number in range(WRITERS):
            self.pool.spawn(self.writer, number)
        self.pool.spawn(self.reader)
        self.pool.spawn(self.health)

    def stop(self):
        self.running = False
        self.pool.waitall()

    def answers(self, kind, lost_at, back_at):
        """``kind``'s records before the loss (answered before it), during
        it (answered after it, sent before the node was back) and after."""
        mine = [record for record in self.records if record[0] == kind]
        return (
            [record for record in mine if record[2] < lost_at],
            [record for record in mine if record[2] >= lost_at and record[1] < back_at],
            [record for record in mine if record[1] >= back_at],
        )


def tally(records):
    return dict(sorted(collections.Counter(str(record[3]) for record in records).items()))


def ok(status):
    return isinstance(status, int) and 200 <= status < 300


def runs(statuses):
    """``["503x3", "200x20"]``: the statuses in order, repeats counted."""
    out = []
    for status in statuses:
        if out and out[-1][0] == status:
            out[-1][1] += 1
        else:
            out.append([status, 1])
    return [f"{status}x{times}" for status, times in out]


def connections_per_node(cluster, via):
    """node -> AMQP connections on it, as ``via`` (a running node) sees the cluster."""
    listed = json.loads(
        cluster.nodes[via].ctl("list_connections", "name", "--formatter", "json", "--quiet")
    )
    # A connection's name ends in the node's AMQP port: "127.0.0.1:50334 -> 127.0.0.1:5672".
    counted = collections.Counter(int(row["name"].rsplit(":", 1)[1]) for row in listed)
    return {f"node{node.number}": counted.get(node.amqp_port, 0) for node in cluster.nodes}


def rpc_queues(cluster, via):
    """``rpc-<service>`` -> "<messages ready>/<consumers>", as ``via`` sees them now
    (asked over AMQP: ``rabbitmqctl list_queues`` counts lag by seconds)."""
    return {
        f"rpc-{name}": "{}/{}".format(
            *queue_state({"AMQP_URI": cluster.nodes[via].url}, f"rpc-{name}")
        )
        for name in SERVICE_NAMES
    }


ELECTED = re.compile(r"^(\S+ \S+) \[\w+\] \S+ queue '[^']+' in vhost '[^']*': candidate -> leader")


def elections(cluster, since):
    """Seconds after ``since`` (an aware ``datetime``) at which the running
    nodes' logs say a queue got a new leader, in order."""
    seconds = []
    for node in cluster.nodes[1:]:
        for path in node.log_dir.glob("*.log"):
            for line in path.read_text(errors="replace").splitlines():
                if match := ELECTED.match(line):
                    at = datetime.datetime.fromisoformat(match[1])
                    if at >= since:
                        seconds.append((at - since).total_seconds())
    return sorted(seconds)


TROUBLE = (  # what the log says went wrong, the worst first
    re.compile(r" (ERROR|CRITICAL) |^runner: .* exited with"),
    re.compile(r"\(expected\) error"),  # a request that failed, and why
    re.compile(r" WARNING "),
)


def troubles(log_text, since, limit=20):
    """What the stack's log said went wrong from ``since`` (a wall-clock
    ``datetime``) on: distinct lines (ids and numbers cut), each with how
    often, errors and exits first, then failed requests, then warnings."""
    seen = {}  # line -> [rank, times]
    stamp = since.strftime("%Y-%m-%d %H:%M:%S,%f")[:23]
    for line in log_text.splitlines():
        rank = next((n for n, kind in enumerate(TROUBLE) if kind.search(line)), None)
        if rank is None or (line[:1].isdigit() and line[:23] < stamp):
            continue
        key = re.sub(r"^\d\S+ \S+ ", "", line)
        key = re.sub(r"\[[0-9a-f]{32}\]|at 0x[0-9a-f]+|\d+(\.\d+)?", "#", key)[:200]
        seen.setdefault(key, [rank, 0])[1] += 1
    ordered = sorted(seen.items(), key=lambda item: item[1][0])  # stable: in order within a rank
    return [f"{times}x {line}" for line, (_, times) in ordered[:limit]]


def test_losing_the_first_broker_node_under_load(
    rabbit_cluster, cluster_stack, smtp_server, db_session
):
    cluster, stack = rabbit_cluster, cluster_stack
    config = stack.config
    login = {"emailAddress": config["ADMIN_EMAIL"], "password": config["ADMIN_PASSWORD"]}
    token = requests.post(f"{stack.api}/api/auth", json=login, timeout=10).json()["token"]
    on_nodes_before = connections_per_node(cluster, 1)
    queues_before = rpc_queues(cluster, 1)

    load = Load(stack.api, token)
    load.start()
    try:
        time.sleep(WARM_UP_SECONDS)
        lost_at, lost_wall = time.monotonic(), datetime.datetime.now()
        cluster.stop_node(0, kill=True)
        time.sleep(RECOVERY_SECONDS)
        queues_during = rpc_queues(cluster, 1)
        on_nodes_during = connections_per_node(cluster, 1)
        time.sleep(max(0.0, LOSS_SECONDS - (time.monotonic() - lost_at)))
        cluster.start_node(0)
        back_at = time.monotonic()
        time.sleep(AFTER_SECONDS)
    finally:
        load.stop()
    ended_at = time.monotonic()
    on_nodes_after = connections_per_node(cluster, 1)

    # What the database holds, and what was mailed for it.
    articles_db = db_session("articles")
    stored = {
        str(article_id): title
        for article_id, title in articles_db.execute(select(Article.id, Article.title)).all()
    }
    elected = elections(cluster, lost_wall.astimezone())
    waited = time.monotonic()
    with contextlib.suppress(AssertionError):
        eventually(lambda: len(smtp_server.messages) >= len(stored), timeout=MAIL_TIMEOUT)
    time.sleep(QUIET_SECONDS)
    mail_seconds = time.monotonic() - waited
    mails = mails_per_article(smtp_server, [{"id": article_id} for article_id in stored])

    before, during, after = load.answers("write", lost_at, back_at)
    writes = before + during + after
    reads_before, reads_during, reads_after = load.answers("read", lost_at, back_at)
    _, health_during, _ = load.answers("health", lost_at, back_at)
    # Of the writes sent after the loss: the first answered 2xx, and any
    # failed after RECOVERY_SECONDS.
    recovered = [answered for _, sent, answered, status in during if sent >= lost_at and ok(status)]
    answered_again = min(recovered) - lost_at if recovered else None
    failed_during = [record for record in during if not ok(record[3])]
    last_failure = max((record[2] for record in failed_during), default=lost_at) - lost_at
    failed_late = [r for r in failed_during if r[1] >= lost_at + RECOVERY_SECONDS]
    titles_stored = set(stored.values())
    unanswered_but_stored = sum(
        1 for title, status in load.titles.items() if not ok(status) and title in titles_stored
    )
    outside = [
        record
        for record in load.records
        if not ok(record[3]) and not (record[2] >= lost_at and record[1] < back_at)
    ]
    figures = (
        f"\n[cluster node lost] cluster of 3 started in {cluster.start_seconds:.1f} s "
        f"(nodes booted in {cluster.boot_seconds:.1f} s, then joined); stack ready in "
        f"{stack.ready_seconds:.1f} s; AMQP connections per node before {on_nodes_before}, "
        f"{RECOVERY_SECONDS} s into the loss {on_nodes_during}, after {on_nodes_after}\n"
        f"  node 1 killed for {back_at - lost_at:.1f} s "
        f"(down {LOSS_SECONDS} s + restart); load ran {ended_at - lost_at + WARM_UP_SECONDS:.0f} s; "
        f"{len(elected)} queues elected a new leader "
        f"{elected and f'{elected[0]:.2f}-{elected[-1]:.2f}'} s after the loss\n"
        f"  writes: before the loss {tally(before)}; during {tally(during)}; "
        f"after {tally(after)}; total {len(writes)}\n"
        f"  writes answered 2xx again {answered_again and round(answered_again, 1)} s "
        f"after the loss; last failed write answered {last_failure:.1f} s after it\n"
        f"  reads: before {tally(reads_before)}; during {tally(reads_during)}; "
        f"after {tally(reads_after)}; /health during the loss "
        f"{runs([record[3] for record in health_during])}\n"
        f"  articles: answered 2xx {len(load.created)}, stored {len(stored)} "
        f"({unanswered_but_stored} of them with a failed answer); mails {len(smtp_server.messages)}"
        f" in {mail_seconds:.1f} s; mails per article {dict(collections.Counter(mails))}\n"
        f"  RPC queues (ready/consumers) before the loss {queues_before}, "
        f"{RECOVERY_SECONDS} s into it {queues_during}\n"
        f"  failed answers outside the loss {tally(outside)}; "
        f"services restarted by the runner {stack.restarts()}"
    )
    print(figures)
    for line in troubles(stack.output(), lost_wall):
        print("  log:", line)

    assert on_nodes_before["node1"] > 0, on_nodes_before
    assert before and all(ok(record[3]) for record in before), tally(before)
    assert answered_again is not None and answered_again <= RECOVERY_SECONDS, figures
    assert not failed_late, figures
    assert {record[3] for record in failed_during} <= ALLOWED_DURING_LOSS, figures
    assert {r[3] for r in reads_during if not ok(r[3])} <= ALLOWED_DURING_LOSS, figures
    assert any(record[3] == 200 for record in health_during), figures
    assert after and all(ok(record[3]) for record in after), figures
    assert not outside, figures
    assert set(load.created) <= set(stored), figures
    assert mails == [1] * len(stored), figures
