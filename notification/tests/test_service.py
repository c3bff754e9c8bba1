"""The notification service in a real container: real broker, database and
SMTP server (aiosmtpd on loopback, see conftest.py)."""

import uuid

import pytest
from nameko.cli.run import import_service
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter
from sqlalchemy import select

from notification.dependencies import MailNotSent
from notification.models import ProcessedEvent
from notification.service import NotificationService

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
