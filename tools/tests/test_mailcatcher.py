"""The development mail catcher of `make run` (tools.mailcatcher)."""

import signal
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage

import pytest

from servicekit.config import ROOT
from tests.support import free_port
from tools import runner


@pytest.fixture
def catcher(tmp_path):
    port = free_port()
    env = {"MAIL_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.mailcatcher", "serve", "127.0.0.1", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not runner.port_in_use(port):
        assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()
        time.sleep(0.05)
    yield port, process, tmp_path
    if process.poll() is None:
        process.kill()
        process.wait()


def mail(subject, text):
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = subject, "a@x.example", "admin@x.example"
    message.set_content(text)
    return message


def test_each_message_is_kept_said_in_one_line_and_listed(catcher):
    port, process, folder = catcher
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
        smtp.send_message(mail("First", "one"))
        smtp.send_message(mail("New Article Added!", "Title: Road works\n"))
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
    said = process.stdout.read().splitlines()
    kept = sorted(folder.glob("*.eml"))
    assert len(kept) == 2
    assert said[1:] == [
        f"mail: to admin@x.example: First ({kept[0]})",
        f"mail: to admin@x.example: New Article Added! ({kept[1]})",
    ]
    listed = subprocess.run(
        [sys.executable, "-m", "tools.mailcatcher", "list"],
        cwd=ROOT, env={"MAIL_DIR": str(folder)}, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    lines = listed.splitlines()
    assert lines[0].endswith("to admin@x.example  First")
    assert lines[1].endswith("to admin@x.example  New Article Added!")
    assert "Title: Road works" in listed  # the newest, in full


def test_make_run_catches_mail_only_when_it_would_be_lost():
    with_nothing_there = {"APP_ENV": "development", "SMTP_HOST": "127.0.0.1"}
    port = free_port()
    child = runner.mail_catcher({**with_nothing_there, "SMTP_PORT": port})
    assert child.command[-3:] == ["serve", "127.0.0.1", str(port)]
    production = {**with_nothing_there, "SMTP_PORT": port, "APP_ENV": "production"}
    assert runner.mail_catcher(production) is None
    assert runner.mail_catcher({"SMTP_HOST": "smtp.example", "SMTP_PORT": port}) is None


def test_make_run_leaves_a_listening_smtp_server_alone(catcher):
    port, _, _ = catcher
    assert runner.mail_catcher({"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port}) is None
