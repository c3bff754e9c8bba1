"""The notification service in a real container: real broker, database and
SMTP server (aiosmtpd on loopback, see conftest.py)."""

import logging
import uuid

import pytest
from nameko.cli.run import import_service
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter
from nameko.testing.utils import get_extension
from sqlalchemy import delete, select

from notification.dependencies import MailNotSent
from notification.models import ProcessedEvent
from notification.service import NotificationService
from servicekit.config import database_url
from servicekit.db import Database
from servicekit.tests.broken_commits import TerminatedCommits
from tests.support import eventually

SUBJECT = "LocalNewsApplication - New Article Added!"


@pytest.fixture
def notification(notification_config, container_factory):
    container = container_factory(NotificationService, notification_config)
    container.start()
    return container


@pytest.fixture
def publish(notification_config):
    """Publish as the articles service does: source "articles", "article_added"."""
    dispatch = event_dispatcher(notification_config)
    return lambda payload: dispatch("articles", "article_added", payload)


def article_added(**fields):
    article = {
        "id": str(uuid.uuid4()),
        "authorUID": str(uuid.uuid4()),
        "title": "Harbour festival this weekend",
        "description": "Music, food and boats on the quay.",
        "body": "All weekend long.",
        "status": 0,
        "tags": ["festival"],
        "imagesUID": [],
        "meta": {"likes": 0},
        "createdDate": "2026-11-28T12:00:00Z",
        "updatedDate": "2026-11-28T12:00:00Z",
        **fields,
    }
    return {"eventId": str(uuid.uuid4()), "occurredAt": "2026-11-28T12:00:00Z", "data": article}


def deliver(container, publish, payload):
    """Publish and wait until the handler has run; return its result."""
    with entrypoint_waiter(container, "on_article_added") as result:
        publish(payload)
    return result


def parts(message):
    return message.get_body("plain").get_content(), message.get_body("html").get_content()


def test_nameko_run_finds_exactly_this_service():
    # `nameko run notification.service` takes every class with entrypoints.
    assert import_service("notification.service") == [NotificationService]


def test_one_article_sends_exactly_one_mail(notification, publish, smtp_server, db_session, config):
    event = article_added()
    deliver(notification, publish, event).get()

    [message] = smtp_server.messages
    assert message["Subject"] == SUBJECT
    assert message["From"] == "noreply@localnews.example"
    assert message["To"] == "admin@example.com"
    assert smtp_server.envelopes[0].rcpt_tos == ["admin@example.com"]
    text, html = parts(message)
    # The gateway's own address: config.yml leaves PUBLIC_BASE_URL unset.
    gateway_port = config["WEB_SERVER_ADDRESS"].rsplit(":", 1)[-1]
    link = f"http://localhost:{gateway_port}/api/articles/{event['data']['id']}"
    for part in (text, html):
        assert "Harbour festival this weekend" in part
        assert "Music, food and boats on the quay." in part
        assert link in part
    recorded = db_session("notification").scalars(select(ProcessedEvent.event_id)).all()
    assert [str(event_id) for event_id in recorded] == [event["eventId"]]


def test_html_and_non_ascii_title_is_escaped_in_html_and_intact_in_text(
    notification, publish, smtp_server
):
    title = "<script>alert(1)</script> Café ünïcode"
    deliver(notification, publish, article_added(title=title, description="Fish & <chips>")).get()

    [message] = smtp_server.messages
    text, html = parts(message)
    assert title in text and "Fish & <chips>" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Café ünïcode" in html
    assert "Fish &amp; &lt;chips&gt;" in html
    assert "<script>" not in html


def test_articles_in_a_row_go_through_one_smtp_connection_closed_at_stop(
    notification, publish, smtp_server
):
    for _ in range(3):
        deliver(notification, publish, article_added()).get()

    assert len(smtp_server.messages) == 3
    assert len(smtp_server.connections) == 1
    notification.stop()
    eventually(lambda: smtp_server.quits == 1)


def test_same_event_delivered_twice_sends_one_mail(notification, publish, smtp_server):
    event = article_added()
    deliver(notification, publish, event).get()
    deliver(notification, publish, event).get()

    assert len(smtp_server.messages) == 1


def test_mail_arrives_once_the_smtp_server_is_back(notification, publish, smtp_server):
    smtp_server.stop()

    def sent(worker_ctx, result, exc_info):
        return exc_info is None

    with entrypoint_waiter(notification, "on_article_added", timeout=15, callback=sent):
        first_try = deliver(notification, publish, article_added())
        # One line that says where: the retry logs it, without a traceback.
        where = f"SMTP {smtp_server.host}:{smtp_server.port}: "
        with pytest.raises(MailNotSent, match=where):
            first_try.get()
        assert smtp_server.messages == []
        smtp_server.start()

    assert len(smtp_server.messages) == 1


def test_malformed_event_is_parked_for_the_operator(notification, publish, notification_config):
    event = {"eventId": str(uuid.uuid4()), "data": {"id": "a1"}}
    deliver(notification, publish, event)

    with ServiceRpcProxy("notification", notification_config, timeout=5) as proxy:
        [parked] = proxy.dead_letters_list()
        assert parked["id"] == event["eventId"]
        assert parked["eventType"] == "article_added"
        assert parked["attempts"] == 1
        assert parked["lastError"].startswith("MalformedEvent: article_added is malformed")
        assert "description" in parked["lastError"]
        assert proxy.dead_letters_discard() == 1


@pytest.fixture
def broken_marks(notification, config):
    """``broken_marks(count)``: the notification container's next ``count``
    commits of a "sent" mark fail as a PostgreSQL restart fails them."""
    breakers = []

    def breaker(count):
        engine = get_extension(notification, Database).engine
        url = database_url(config, "notification")
        # The claim's INSERT only: the background pruning of the same table
        # (a DELETE) must not use up the failures.
        breakers.append(TerminatedCommits(engine, url, "INSERT INTO processed_events", count))
        return breakers[-1]

    yield breaker
    for each in breakers:
        each.remove()


def recorded(db_session):
    session = db_session("notification")
    session.rollback()  # a fresh snapshot
    return [str(event_id) for event_id in session.scalars(select(ProcessedEvent.event_id))]


def test_a_mark_cut_off_after_the_send_is_retried_never_the_mail(
    notification, publish, smtp_server, db_session, broken_marks, caplog
):
    failures = 3
    breaker = broken_marks(failures)
    event = article_added()

    with caplog.at_level(logging.INFO, logger="servicekit.effects"):
        deliver(notification, publish, event).get()

    assert len(breaker.terminated) == failures
    assert len(smtp_server.messages) == 1
    assert recorded(db_session) == [event["eventId"]]
    lines = [r for r in caplog.records if r.name == "servicekit.effects"]
    warnings = [r for r in lines if r.levelno == logging.WARNING]
    assert len(warnings) == failures
    for line in warnings:  # one line a retry, naming the event, no traceback
        assert line.exc_info is None
        assert line.getMessage().startswith(
            f"the sent mark of article_added event {event['eventId']} not stored: "
            "the database cannot be reached ("
        )
    assert lines[-1].getMessage().endswith(f"stored after {failures} retries")

    # Stored: the same event again sends nothing.
    deliver(notification, publish, event).get()
    assert len(smtp_server.messages) == 1


def test_a_mail_repeated_after_its_mark_was_lost_has_the_same_message_id(
    notification, publish, smtp_server, db_session
):
    event = article_added()
    deliver(notification, publish, event).get()
    # What a process killed between the SMTP answer and the commit leaves.
    session = db_session("notification")
    session.execute(delete(ProcessedEvent))
    session.commit()
    deliver(notification, publish, event).get()

    first, repeat = (message["Message-ID"].strip() for message in smtp_server.messages)
    assert first == repeat == f"<article-added.{event['eventId']}@localnews.example>"
    assert recorded(db_session) == [event["eventId"]]
