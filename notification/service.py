"""Notification: one email to the admin for each new article.

``article_added`` is handled once per ``eventId``: the id is claimed in a
transaction before the send and committed only after the SMTP server accepted
the mail; that commit is the "sent" mark. An SMTP failure rolls back and
raises, so the event comes back with a growing delay (servicekit.retry) and
is parked after the last try; so does a database out of reach before the
send (one line a try). Once the mail is accepted, the mark alone is retried
until the database takes it (servicekit.effects), never the send: only a
process that ends before the mark is stored mails again on redelivery, with
the same ``Message-ID`` (one per event, see emails.py).
"""

from servicekit.base import ServiceBase
from servicekit.config import public_base_url
from servicekit.db import Database
from servicekit.dead_letters import DeadLetters, dead_letter_rpcs
from servicekit.effects import commit_after_effect
from servicekit.errors import ServiceUnavailable
from servicekit.idempotency import claim_event
from servicekit.retention import Retention
from servicekit.retry import retrying_event_handler
from servicekit.rpc import answers_database_errors, rpc

from .dependencies import MailNotSent, Smtp
from .emails import new_article_email
from .models import Base, ProcessedEvent
from .schemas import load_article_added

# The handler's name in processed_events.
HANDLER = "article_added_email"


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

    # A mail that could not be sent, or a database out of reach before the
    # send (a ServiceUnavailable), is retried: one line a try, no traceback.
    @retrying_event_handler(
        "articles", "article_added", expected_exceptions=(MailNotSent, ServiceUnavailable)
    )
    @answers_database_errors
    def on_article_added(self, payload):
        event = load_article_added(payload)
        session = self.db.session
        if not claim_event(session, ProcessedEvent, payload, HANDLER):
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
        # Sent: from here on the mark is retried until the database takes it,
        # never the mail. A crash before it is stored mails twice on
        # redelivery (at least once, never zero times), with one Message-ID.
        commit_after_effect(
            session,
            lambda fresh: claim_event(fresh, ProcessedEvent, payload, HANDLER),
            f"the sent mark of article_added event {event['eventId']}",
        )

    @rpc
    def health(self):
        return self.db.health()
