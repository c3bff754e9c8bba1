from sqlalchemy.orm import DeclarativeBase

from news.models import NewsItemMixin, SearchSettingsMixin, TagIndexMixin, counter_column
from servicekit.outbox import OutboxMixin
from servicekit.request_keys import RequestKeyMixin


class Base(DeclarativeBase):
    pass


class Article(NewsItemMixin, Base):
    __tablename__ = "articles"

    counters = ("likes",)
    likes = counter_column()


class ArticleTag(TagIndexMixin, Base):
    __tablename__ = "article_tags"
    item_table = "articles"


class OutboxMessage(OutboxMixin, Base):
    pass


class RequestKey(RequestKeyMixin, Base):
    pass


class SearchSettings(SearchSettingsMixin, Base):
    pass
