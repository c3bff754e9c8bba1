"""Events: local happenings, news items with an ``eventDate``.

Every change is announced with ``event_added``/``event_updated``/
``event_deleted`` through the outbox, committed with the change. Lists stay
newest (created) first, and filter on ``eventDate`` with ``from``/``to``.
What events share with articles lives in the ``news`` package.
"""

from news.items import NewsItems
from news.search import SearchLanguage
from servicekit.base import ServiceBase
from servicekit.db import Database
from servicekit.outbox import Outbox
from servicekit.request_keys import RequestKeys
from servicekit.rpc import rpc

from .models import Base, Event, EventTag, OutboxMessage, RequestKey
from .schemas import EventListQuerySchema, EventSchema, event_date_range

event_items = NewsItems(
    "event", Event, EventTag, EventSchema(), EventListQuerySchema(), filters=event_date_range
)


class EventsService(ServiceBase):
    name = "events"

    db = Database(Base)
    outbox = Outbox(OutboxMessage)
    request_keys = RequestKeys(RequestKey)
    search_language = SearchLanguage(Event)

    @rpc
    def create(self, payload, request_key=None):
        """Store a new event (``eventDate`` required; no offset means UTC)."""
        claim = self.request_keys.claim(self.db.session, request_key)
        return event_items.create(self.db.session, self.outbox, payload, claim)

    @rpc
    def get(self, event_id):
        return event_items.get(self.db.reads, event_id)

    @rpc
    def list(self, limit=None, cursor=None, **filters):
        """A page, newest created first; ``filters``: ``tag``, ``q`` (a full-text
        search: best match first), and ``from``/``to``
        on ``eventDate``, both included (from the shell: ``**{"from": "2026-07-01"}``)."""
        params = {"limit": limit, "cursor": cursor, **filters}
        return event_items.list(
            self.db.reads,
            params,
            secret=self.config["JWT_SECRET"],
            language=self.search_language,
        )

    @rpc
    def update(self, event_id, payload, expected_author=None, request_key=None):
        """Change the fields sent; with ``expected_author``, only that author's event."""
        claim = self.request_keys.claim(self.db.session, request_key)
        return event_items.update(
            self.db.session, self.outbox, event_id, payload, expected_author, claim
        )

    @rpc
    def delete(self, event_id, expected_author=None, request_key=None):
        claim = self.request_keys.claim(self.db.session, request_key)
        return event_items.delete(self.db.session, self.outbox, event_id, expected_author, claim)

    @rpc
    def health(self):
        return self.db.health()
