from sqlalchemy import DateTime
from sqlalchemy.orm import DeclarativeBase, mapped_column

from news.models import NewsItemMixin, SearchSettingsMixin, TagIndexMixin, counter_column
from servicekit.outbox import OutboxMixin
from servicekit.request_keys import RequestKeyMixin


class Base(DeclarativeBase):
    pass


class Event(NewsItemMixin, Base):
    """A local happening: a news item with the date it takes place."""

    __tablename__ = "events"

    counters = ("attending",)
    attending = counter_column()
    # Indexed for ?from=/?to=: the planner reads just the range when it is narrow.
    event_date = mapped_column(DateTime(timezone=True), nullable=False, index=True)


class EventTag(TagIndexMixin, Base):
    __tablename__ = "event_tags"
    item_table = "events"


class OutboxMessage(OutboxMixin, Base):
    pass


class RequestKey(RequestKeyMixin, Base):
    pass


class SearchSettings(SearchSettingsMixin, Base):
    pass
