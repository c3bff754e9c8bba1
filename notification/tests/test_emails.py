"""The email itself and the handler's order of steps, without broker or SMTP."""

import uuid
from email import message_from_bytes, policy
from email.utils import parsedate_to_datetime
from unittest.mock import call

import pytest
from nameko.testing.services import worker_factory

from notification.dependencies import MailNotSent
from notification.emails import SUBJECT, article_link, new_article_email
from notification.service import NotificationService
from servicekit.idempotency import MalformedEvent

CONFIG = {
    "MAIL_FROM": "noreply@localnews.example",
    "ADMIN_EMAIL": "admin@example.com",
    "PUBLIC_BASE_URL": "http://localhost:8000/",
}
ARTICLE = {"id": "a1", "title": "<b>Fair</b> & more", "description": "Sun > rain"}


def email(article=ARTICLE):
    return new_article_email(
        article,
        event_id=uuid.UUID(int=1),
        sender=CONFIG["MAIL_FROM"],
        recipient=CONFIG["ADMIN_EMAIL"],
        base_url=CONFIG["PUBLIC_BASE_URL"],
    )


def sent(message):
    """The message as the SMTP server gets it, parsed back."""
    return message_from_bytes(message.as_bytes(), policy=policy.default)


def test_link_goes_through_the_gateway():
    assert article_link("http://localhost:8000/", "a 1/2") == (
        "http://localhost:8000/api/articles/a%201%2F2"
    )


def test_email_has_text_and_escaped_html_parts():
    message = sent(email())

    assert message["Subject"] == SUBJECT
    text = message.get_body("plain").get_content()
    html = message.get_body("html").get_content()
    assert "<b>Fair</b> & more" in text and "Sun > rain" in text
    assert "&lt;b&gt;Fair&lt;/b&gt; &amp; more" in html and "Sun &gt; rain" in html
    assert '<a href="http://localhost:8000/api/articles/a1">' in html


def test_message_id_is_one_per_event():
    def message_id(event_id):
        return new_article_email(
            ARTICLE,
            event_id=event_id,
            sender=CONFIG["MAIL_FROM"],
            recipient=CONFIG["ADMIN_EMAIL"],
            base_url=CONFIG["PUBLIC_BASE_URL"],
        )["Message-ID"]

    event_id = uuid.uuid4()
    # Built again (a repeat after a crash): the same id, which mail clients
    # and the operator recognise.
    assert message_id(event_id) == message_id(str(event_id))
    assert message_id(event_id) == f"<article-added.{event_id}@localnews.example>"
    assert message_id(uuid.uuid4()) != message_id(event_id)


def test_template_placeholders_in_a_title_stay_as_written():
    text = sent(email({**ARTICLE, "title": "Costs $title and ${link}"})).get_body("plain")
    assert "Costs $title and ${link}" in text.get_content()


def test_headers_and_a_non_ascii_title_survive_the_trip():
    title = "Café ünïcode — 北京 <b>news</b>"
    description = "Ærø & Ωmega"
    produced = email({**ARTICLE, "title": title, "description": description})
    # Whatever the article says, the mail is 7-bit: no server refuses it.
    assert produced.as_bytes().isascii()
    message = sent(produced)

    assert message["Subject"] == SUBJECT
    assert message["From"].addresses[0].addr_spec == CONFIG["MAIL_FROM"]
    assert message["To"].addresses[0].addr_spec == CONFIG["ADMIN_EMAIL"]
    assert message["Message-ID"].strip() == f"<article-added.{uuid.UUID(int=1)}@localnews.example>"
    assert parsedate_to_datetime(message["Date"]).utcoffset().total_seconds() == 0
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body("plain").get_content()
    html = message.get_body("html").get_content()
    assert f"Title: {title}\nDescription: {description}\n" in text
    assert "<h1>Café ünïcode — 北京 &lt;b&gt;news&lt;/b&gt;</h1>" in html
    assert "<p>Ærø &amp; Ωmega</p>" in html


def test_a_title_that_spells_the_part_boundary_does_not_split_the_mail():
    boundary = f"--article-added.{uuid.UUID(int=1)}"
    title = f"{boundary}\n{boundary}--"
    message = sent(email({**ARTICLE, "title": title}))

    assert len(list(message.iter_parts())) == 2
    assert title in message.get_body("plain").get_content()


def event(**data):
    return {"eventId": str(uuid.uuid4()), "data": {**ARTICLE, **data}}


def test_commits_the_claim_only_after_the_mail_is_sent():
    service = worker_factory(NotificationService, config=CONFIG)
    service.on_article_added(event())

    service.smtp.send.assert_called_once()
    session = service.db.session
    assert session.mock_calls[-1] == call.commit()


def test_smtp_failure_rolls_back_and_raises():
    service = worker_factory(NotificationService, config=CONFIG)
    service.smtp.send.side_effect = MailNotSent("mail to x not sent through SMTP h:25: gone")

    with pytest.raises(MailNotSent):
        service.on_article_added(event())

    service.db.session.rollback.assert_called_once()
    service.db.session.commit.assert_not_called()


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {"data": ARTICLE},
        {"eventId": "not-a-uuid", "data": ARTICLE},
        {"eventId": str(uuid.uuid4()), "data": {"id": "a1", "title": "No description"}},
    ],
)
def test_malformed_event_is_refused_before_any_effect(payload):
    service = worker_factory(NotificationService, config=CONFIG)

    with pytest.raises(MalformedEvent):
        service.on_article_added(payload)

    service.smtp.send.assert_not_called()
    service.db.session.execute.assert_not_called()
