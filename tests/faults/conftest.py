"""Fault tests: a broker that goes away, services that stop or are killed.

On the real RabbitMQ and PostgreSQL, in the test's own vhost and databases.
The broker is never stopped (other people's tests use it): an outage is a
:class:`~tests.faults.proxy.TcpProxy` between the services and the broker,
cut and restored. Real processes are ``nameko run`` children of the test.

Every test prints its figures: ``pytest -m faults -s`` shows them.
"""

import os
import signal
import subprocess
import sys
import uuid
from urllib.parse import urlsplit

import pytest
from amqp.exceptions import NotFound
from kombu import Connection
from sqlalchemy import func, select

from notification.tests.conftest import notification_config, smtp_server  # noqa: F401 - fixtures
from servicekit.config import CONFIG_PATH, ROOT

from .postgres import PrivatePostgres
from .postgres import unavailable as postgres_unavailable
from .proxy import TcpProxy
from .rabbit_cluster import RabbitCluster
from .rabbit_cluster import installed as rabbit_cluster_installed

STOP_SECONDS = 15
DEADLINE = 60  # for waits: only against a hang, the figures printed are what matters
PASSWORD = "fault test password"


def new_user(n):
    return {
        "firstName": f"Faulty{n}",
        "lastName": "Test",
        "emailAddress": f"faulty{n}-{uuid.uuid4().hex[:8]}@example.com",
        "password": PASSWORD,
    }


def new_article(n):
    return {
        "authorUID": str(uuid.uuid4()),
        "title": f"Written in trouble #{n}",
        "description": "Something was down.",
        "body": "Still announced.",
    }


@pytest.fixture
def broker_proxy(config):
    """A :class:`TcpProxy` in front of the test's broker."""
    url = urlsplit(config["AMQP_URI"])
    proxy = TcpProxy((url.hostname, url.port or 5672))
    yield proxy
    proxy.close()


def queue_state(config, queue_name):
    """``(messages ready, consumers)`` of a queue, as the broker sees it now."""
    with Connection(config["AMQP_URI"]) as conn, conn.channel() as channel:
        try:
            _, messages, consumers = channel.queue_declare(queue_name, passive=True)
        except NotFound:
            return 0, 0
        return messages, consumers


def count(session, model, *where):
    """Rows of ``model`` (matching ``where``) in a fresh snapshot of ``session``."""
    session.rollback()
    return session.scalar(select(func.count()).select_from(model).where(*where))


def mails_per_article(smtp, articles):
    """How many of the mails received name each article (by its id)."""
    texts = [message.get_body("plain").get_content() for message in smtp.messages]
    return [sum(article["id"] in text for text in texts) for article in articles]


class NamekoProcess:
    """``nameko run --config <config> <module>`` as a child process.

    Its output (log lines and prints) goes to ``log_path``.
    """

    def __init__(self, module, env, log_path, config_path=CONFIG_PATH):
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "nameko", "run", "--config", str(config_path), module],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.pid = self.popen.pid

    def log(self):
        return self.log_path.read_text()

    def send(self, signum):
        self.popen.send_signal(signum)

    def wait(self, timeout):
        """The exit status, or ``None`` if still running after ``timeout`` seconds."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.popen.poll() is None:
            self.send(signal.SIGTERM)
            if self.wait(STOP_SECONDS) is None:
                self.popen.kill()
                self.popen.wait()


def service_env(config):
    """Environment variables that point ``config.yml`` at the test's broker and databases."""
    env = {**os.environ, "AMQP_URI": config["AMQP_URI"], "PYTHONUNBUFFERED": "1"}
    for key, url in config["DB_URIS"].items():
        env[f"{key.split(':')[0].upper()}_DB_URL"] = url
    return env


def start_runner(env, log_path, **options):
    """``python -m tools.runner`` (``make run``) as a child in a process
    group of its own, its output in ``log_path``."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tools.runner"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
            **options,
        )


def nameko_shell(config, script):
    """Run ``script`` (lines for ``make shell``'s prompt) on the test's broker,
    as an operator would; return what it printed (tracebacks included)."""
    done = subprocess.run(
        [sys.executable, "-m", "tools.shell", "--interface", "plain"],
        cwd=ROOT,
        env=service_env(config),
        input=script,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


@pytest.fixture
def nameko_run(config, tmp_path):
    """``nameko_run("users.service")``: a started :class:`NamekoProcess`.

    On the test's vhost and databases; ``config_path`` for another config
    file. Stopped (SIGTERM, then SIGKILL) at the end of the test.
    """
    processes = []

    def run(module, config_path=CONFIG_PATH):
        log_path = tmp_path / f"{module}-{len(processes)}.log"
        process = NamekoProcess(module, service_env(config), log_path, config_path)
        processes.append(process)
        return process

    yield run
    for process in processes:
        process.stop()


@pytest.fixture
def rabbit_cluster(tmp_path):
    """A started RabbitMQ cluster of the test's own, of three nodes
    (:class:`~tests.faults.rabbit_cluster.RabbitCluster`); stopped, whatever
    happened, at the end of the test. Its data and logs stay in ``tmp_path``."""
    reason = rabbit_cluster_installed()
    if reason is not None:
        pytest.skip(f"cannot start a RabbitMQ cluster here: {reason}")
    cluster = RabbitCluster(tmp_path / "rabbit")
    cluster.start()  # stops what it started if it fails
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def private_postgres():
    """A started PostgreSQL server of the test's own, with the project's role
    (:class:`~tests.faults.postgres.PrivatePostgres`), on a port of its own:
    a test may restart or stop it, never the host's. Stopped and removed,
    whatever happened, at the end of the test."""
    reason = postgres_unavailable()
    if reason is not None:
        pytest.skip(f"cannot start a PostgreSQL server here: {reason}")
    server = PrivatePostgres()
    try:
        server.init().start()
        server.create_login()
        yield server
    finally:
        server.close()
