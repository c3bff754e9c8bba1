"""Smtp's connections on a real SMTP server (aiosmtpd, see conftest.py): kept
open and reused, one per send at a time, replaced when the server dropped
them, and never a mail sent twice by a second try."""

import functools
import ssl
import time
import uuid

import eventlet
import pytest

from notification import dependencies
from notification.dependencies import MailNotSent, Smtp
from notification.emails import new_article_email
from tests.support import eventually

ARTICLE = {"id": "a1", "title": "Harbour festival", "description": "Boats on the quay."}


class Container:
    """What Smtp reads of its service container."""

    def __init__(self, config):
        self.config = config


@pytest.fixture
def smtp_for():
    """``smtp_for(server, **config)``: an Smtp set up to send through ``server``."""
    made = []

    def make(server, **config):
        container = Container({"SMTP_HOST": server.host, "SMTP_PORT": server.port, **config})
        provider = Smtp().bind(container, "smtp")
        provider.setup()
        made.append((container, provider))  # bind() keeps only a weak reference
        return provider

    yield make
    for _, provider in made:
        provider.kill()


@pytest.fixture
def smtp(smtp_for, smtp_server):
    return smtp_for(smtp_server)


def mail():
    return new_article_email(
        ARTICLE,
        event_id=uuid.uuid4(),
        sender="noreply@localnews.example",
        recipient="admin@example.com",
        base_url="http://localhost/",
    )


def delivered(smtp_server):
    """The Message-IDs the server accepted, in order."""
    return [message["Message-ID"].strip() for message in smtp_server.messages]


def test_consecutive_mails_go_through_one_connection(smtp, smtp_server):
    mails = [mail() for _ in range(3)]
    for each in mails:
        smtp.send(each)

    assert delivered(smtp_server) == [each["Message-ID"] for each in mails]
    assert len(smtp_server.connections) == 1


@pytest.mark.parametrize("drop", ["idle timeout", "restart", "421 to MAIL FROM"])
def test_a_connection_dropped_while_idle_is_replaced_and_the_mail_sent_once(
    smtp, smtp_server, drop
):
    if drop == "idle timeout":
        smtp_server.stop()
        smtp_server.idle_timeout = 0.5
        smtp_server.start()
    first = mail()
    smtp.send(first)
    if drop == "idle timeout":
        time.sleep(1.2)
    elif drop == "restart":
        smtp_server.stop()
        smtp_server.start()
    else:  # what a server says as it closes a connection it no longer serves
        smtp_server.mail_refusals = ["421 4.4.2 Idle for too long, closing"]
    second = mail()

    smtp.send(second)

    assert delivered(smtp_server) == [first["Message-ID"], second["Message-ID"]]
    assert len(smtp_server.connections) == 2


def test_a_refused_envelope_is_tried_once_more_on_a_new_connection_only(smtp, smtp_server):
    smtp.send(mail())
    smtp_server.mail_refusals = ["550 5.7.1 Sender refused"] * 3

    with pytest.raises(MailNotSent, match=r"5\.7\.1 Sender refused"):
        smtp.send(mail())

    assert len(smtp_server.connections) == 2
    assert len(smtp_server.mail_refusals) == 1


def test_a_refusal_on_a_new_connection_is_not_tried_again(smtp, smtp_server):
    smtp_server.mail_refusals = ["550 5.7.1 Sender refused"] * 2

    with pytest.raises(MailNotSent):
        smtp.send(mail())

    assert len(smtp_server.connections) == 1
    assert smtp_server.messages == []


@pytest.mark.parametrize("failure", ["hang up before the answer", "answer after the timeout"])
def test_a_failure_once_the_data_went_out_is_not_retried(smtp, smtp_server, monkeypatch, failure):
    monkeypatch.setattr(dependencies, "TIMEOUT_SECONDS", 0.5)
    first = mail()
    smtp.send(first)
    if failure == "hang up before the answer":
        smtp_server.hang_up_after_data = True
    else:
        smtp_server.answer_delay = 1.0
    second = mail()

    where = (
        f"mail to admin@example.com not sent through SMTP {smtp_server.host}:{smtp_server.port}: "
    )
    with pytest.raises(MailNotSent, match=where):
        smtp.send(second)

    # The server kept the mail, the client could not know: one copy, and no
    # second try on a new connection.
    assert delivered(smtp_server) == [first["Message-ID"], second["Message-ID"]]
    assert len(smtp_server.connections) == 1

    # That connection was closed; the next mail takes a new one.
    smtp_server.answer_delay = 0.0
    smtp.send(mail())
    assert len(smtp_server.messages) == 3
    assert len(smtp_server.connections) == 2


def test_concurrent_sends_have_a_connection_each_then_reuse_them(smtp, smtp_server):
    smtp.send(mail())  # one idle connection, which only one of them may take
    smtp_server.answer_delay = 0.3
    mails = [mail() for _ in range(4)]
    pool = eventlet.GreenPool()
    for each in mails:
        pool.spawn(smtp.send, each)
    pool.waitall()

    assert sorted(delivered(smtp_server)[1:]) == sorted(each["Message-ID"] for each in mails)
    # Each came on a connection of its own, the idle one among them.
    assert len(set(smtp_server.delivered_on[1:])) == 4
    assert len(smtp_server.connections) == 4

    smtp_server.answer_delay = 0.0
    for _ in range(4):
        smtp.send(mail())
    assert len(smtp_server.messages) == 9
    assert len(smtp_server.connections) == 4


def test_a_connection_idle_past_the_bound_is_closed_not_reused(smtp, smtp_server, monkeypatch):
    monkeypatch.setattr(dependencies, "IDLE_SECONDS", 0.1)
    smtp.send(mail())
    time.sleep(0.2)

    smtp.send(mail())

    assert len(smtp_server.messages) == 2
    assert len(smtp_server.connections) == 2
    eventually(lambda: smtp_server.quits == 1)


@pytest.mark.parametrize("end", ["stop", "kill"])
def test_stop_and_kill_close_the_idle_connections(smtp, smtp_server, end):
    smtp_server.answer_delay = 0.2
    pool = eventlet.GreenPool()
    for _ in range(2):
        pool.spawn(smtp.send, mail())
    pool.waitall()
    assert len(smtp_server.connections) == 2

    getattr(smtp, end)()

    eventually(lambda: smtp_server.quits == 2)


def test_a_connection_is_upgraded_and_logged_in_once_for_many_mails(
    smtp_for, tls_smtp_server, loopback_certificate, monkeypatch
):
    # The client checks the certificate as in production, against this CA.
    trusting_the_server = functools.partial(
        ssl.create_default_context, cafile=str(loopback_certificate[0])
    )
    monkeypatch.setattr(ssl, "create_default_context", trusting_the_server)
    smtp = smtp_for(
        tls_smtp_server, SMTP_STARTTLS="yes", SMTP_USER="mailer", SMTP_PASSWORD="secret"
    )

    for _ in range(3):
        smtp.send(mail())

    # The server takes mail only over TLS from a logged-in client.
    assert len(tls_smtp_server.messages) == 3
    assert len(tls_smtp_server.connections) == 1
    assert tls_smtp_server.logins == 1
