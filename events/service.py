"""Events: local happenings, news items with an ``eventDate``.

Every change is announced with ``event_added``/``event_updated``/
``event_deleted`` through the outbox, committed with the change. The RPCs
(create, get, list, update, delete, health) come from the shared
:class:`~servicekit.news.NewsItemService`; events add their date and the
``from``/``to`` filter of the list. Lists stay newest (created) first.
"""

from servicekit import news
from servicekit.db import Database
from servicekit.outbox import Outbox

from .models import Base, Event, EventTag, OutboxMessage
from .schemas import EventListQuerySchema, event_schema


# The base is reached through its module: `nameko run events.service` starts
# every class with entrypoints that it finds in this module's namespace.
class EventsService(news.NewsItemService):
    name = "events"
    resource = "event"
    model = Event
    tag_model = EventTag
    schema = event_schema
    list_schema = EventListQuerySchema()

    db = Database(Base)
    outbox = Outbox(OutboxMessage, Base)

    @classmethod
    def list_query(cls, params):
        query, key = super().list_query(params)
        if params.get("date_from") is not None:
            query = query.where(Event.event_date >= params["date_from"])
        if params.get("date_to") is not None:
            query = query.where(Event.event_date <= params["date_to"])
        return query, key
