"""Notification: one email to the admin for each new article.

``article_added`` is handled once per ``eventId``: the id is recorded in the
same transaction as the send, committed only after the SMTP server accepted
the mail. An SMTP failure rolls back and raises, so the event comes back with
a growing delay (servicekit.retry) and is parked after the last try.
"""

from servicekit.base import ServiceBase
from servicekit.config import public_base_url
from servicekit.db import Database
from servicekit.dead_letters import DeadLetters, dead_letter_rpcs
from servicekit.idempotency import claim_event
from servicekit.retention import Retention
from servicekit.retry import retrying_event_handler
from servicekit.rpc import rpc

from .dependencies import MailNotSent, Smtp
from .emails import new_article_email
from .models import Base, ProcessedEvent
from .schemas import load_article_added


class NotificationService(ServiceBase):
    name = "notification"

    db = Database(Base)
    smtp = Smtp()
    dead_letters = DeadLetters()
    processed_events = Retention(
        ProcessedEvent, "processed_at", days_setting="PROCESSED_EVENTS_RETENTION_DAYS", days=30
    )

    # Operators: n.rpc.notification.dead_letters_list() / _replay(id) / _discard(id)
    dead_letters_list, dead_letters_replay, dead_letters_discard = dead_letter_rpcs()

    # A mail that could not be sent is retried: one line a try, no traceback.
    @retrying_event_handler("articles", "article_added", expected_exceptions=MailNotSent)
    def on_article_added(self, payload):
        event = load_article_added(payload)
        session = self.db.session
        if not claim_event(session, ProcessedEvent, payload, "article_added_email"):
            return
        message = new_article_email(
            event["data"],
            event_id=event["eventId"],
            sender=self.config["MAIL_FROM"],
            recipient=self.config["ADMIN_EMAIL"],
            base_url=public_base_url(self.config),
        )
        try:
            self.smtp.send(message)
        except Exception:
            # Not sent, so not claimed: the retry must be free to send it.
            session.rollback()
            raise
        # A crash right here mails twice on redelivery (at least once, never
        # zero times); the Message-ID is the same both times.
        session.commit()

    @rpc
    def health(self):
        return self.db.health()
