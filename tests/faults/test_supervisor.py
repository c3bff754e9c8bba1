"""`make run`'s supervisor: a crashed service comes back; a background
`make run` stops every process gracefully on SIGINT."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests

from servicekit.config import ROOT
from tests.support import free_port

from .conftest import service_env, start_runner

pytestmark = pytest.mark.faults


class Runner:
    def __init__(self, config, tmp_path, ignore_sigint=False):
        self.port = free_port()
        env = {
            **service_env(config),
            "GATEWAY_PORT": str(self.port),
            "GATEWAY_PROCESSES": "1",
            # Nothing listens there: make run catches the mail itself.
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(free_port()),
            "MAIL_DIR": str(tmp_path / "mail"),
            "SHUTDOWN_GRACE_SECONDS": "5",
            "LOG_LEVEL": "WARNING",
        }
        self.mail_dir = tmp_path / "mail"
        self.log_path = tmp_path / "runner.log"
        # As a shell's `&` starts a job: SIGINT ignored, and so in its children.
        ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
        self.process = start_runner(env, self.log_path, preexec_fn=ignore)

    def output(self):
        return self.log_path.read_text()

    def wait_for(self, text, timeout=60):
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output()}"
            time.sleep(0.2)

    def pids(self):
        """service name -> pid of its latest start."""
        return dict(re.findall(r"runner: started (\S+) \(pid (\d+)\)", self.output()))

    def get(self, path):
        return requests.get(f"http://127.0.0.1:{self.port}{path}", timeout=5)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            for pid in self.pids().values():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)


@pytest.fixture
def runner(config, tmp_path):
    runners = []

    def start(**kwargs):
        runners.append(Runner(config, tmp_path, **kwargs))
        return runners[-1]

    yield start
    for each in runners:
        each.stop()


def alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    return True


def test_a_killed_service_comes_back_while_the_others_keep_serving(runner):
    run = runner()
    run.wait_for("runner: ready")
    killed = run.pids()["articles"]
    os.kill(int(killed), signal.SIGKILL)
    run.wait_for("articles exited with -9; restarting it in 1 s")
    # Meanwhile: the users service, through the gateway, is unaffected.
    assert run.get("/api/users").status_code == 200
    deadline = time.monotonic() + 30
    while run.pids()["articles"] == killed or run.get("/health").status_code != 200:
        assert time.monotonic() < deadline, run.output()
        time.sleep(0.2)
    assert run.get("/api/articles").status_code == 200


def test_sigint_stops_a_background_runner_and_every_service_gracefully(runner):
    run = runner(ignore_sigint=True)
    run.wait_for("runner: ready")
    pids = run.pids()
    started = time.monotonic()
    run.process.send_signal(signal.SIGINT)
    assert run.process.wait(20) == 0
    assert time.monotonic() - started < 5 + 5  # the grace, and the margin
    output = run.output()
    assert "runner: all services stopped" in output
    assert "killing it" not in output
    assert not [name for name, pid in pids.items() if alive(pid)]


def test_the_admins_mail_is_caught_and_shown_when_no_smtp_server_runs(runner, config):
    run = runner()
    run.wait_for("runner: ready")
    assert "catching mail ourselves; `make mail` shows it" in run.output()
    api = f"http://127.0.0.1:{run.port}"
    login = {"emailAddress": config["ADMIN_EMAIL"], "password": config["ADMIN_PASSWORD"]}
    token = requests.post(f"{api}/api/auth", json=login, timeout=10).json()["token"]
    article = {"title": "Road works on Main Street", "description": "Closed", "body": "..."}
    created = requests.post(
        f"{api}/api/articles",
        json=article,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    run.wait_for("mail: to admin@example.com: LocalNewsApplication - New Article Added!")
    [kept] = run.mail_dir.glob("*.eml")
    shown = subprocess.run(
        [sys.executable, "-m", "tools.mailcatcher", "list"],
        cwd=ROOT, env={**os.environ, "MAIL_DIR": str(run.mail_dir)},
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "Road works on Main Street" in shown and kept.name[:15] in shown
