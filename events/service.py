"""Events: local happenings, news items with an ``eventDate``.

Every change is announced with ``event_added``/``event_updated``/
``event_deleted`` through the outbox, committed with the change. Lists stay
newest (created) first, and filter on ``eventDate`` with ``from``/``to``.
What events share with articles lives in the ``news`` package.
"""

from news.items import NewsItems
from news.schemas import EventListQuerySchema, EventSchema
from news.search import Search
from servicekit.base import ServiceBase
from servicekit.db import Database
from servicekit.pagination import CursorKey
from servicekit.rpc import rpc
from servicekit.writes import Changes, writes

from .models import Base, Event, EventTag, OutboxMessage, RequestKey


def event_date_range(query, params):
    """``from``/``to`` of a list, on ``eventDate`` (news.items' ``filters``)."""
    if params.get("date_from") is not None:
        query = query.where(Event.event_date >= params["date_from"])
    if params.get("date_to") is not None:
        query = query.where(Event.event_date <= params["date_to"])
    return query


event_items = NewsItems(
    "event", Event, EventTag, EventSchema(), EventListQuerySchema(), filters=event_date_range
)


class EventsService(ServiceBase):
    name = "events"

    db = Database(Base)
    change = Changes(OutboxMessage, RequestKey)
    cursor_key = CursorKey()
    search = Search(Event)

    @rpc
    @writes
    def create(self, payload):
        """Store a new event (``eventDate`` required; no offset means UTC)."""
        return event_items.create(self.change, payload)

    @rpc
    def get(self, event_id):
        return event_items.get(self.db.reads, event_id)

    @rpc
    def list(self, limit=None, cursor=None, **filters):
        """A page, newest created first; ``filters``: ``tag``, ``q`` (a full-text
        search: best match first, of the newest ``SEARCH_MAX_MATCHES`` matches),
        and ``from``/``to`` on ``eventDate``, both included (from the shell:
        ``**{"from": "2026-07-01"}``)."""
        params = {"limit": limit, "cursor": cursor, **filters}
        return event_items.list(
            self.db.reads,
            params,
            secret=self.cursor_key,
            search=self.search,
        )

    @rpc
    @writes
    def update(self, event_id, payload, expected_author=None):
        """Change the fields sent; with ``expected_author``, only that author's event."""
        return event_items.update(self.change, event_id, payload, expected_author)

    @rpc
    @writes
    def delete(self, event_id, expected_author=None):
        return event_items.delete(self.change, event_id, expected_author)

    @rpc
    def health(self):
        return self.db.health()
