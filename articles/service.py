"""Articles: news items written by users, listed newest first and by tag.

Every change is announced with ``article_added``/``article_updated``/
``article_deleted`` through the outbox, committed with the change. What
articles share with events lives in the ``news`` package.
"""

from news.items import NewsItems
from news.schemas import ArticleSchema
from news.search import Search
from servicekit.base import ServiceBase
from servicekit.db import Database
from servicekit.pagination import CursorKey
from servicekit.rpc import rpc
from servicekit.writes import Changes, writes

from .models import Article, ArticleTag, Base, OutboxMessage, RequestKey

article_items = NewsItems("article", Article, ArticleTag, ArticleSchema())


class ArticlesService(ServiceBase):
    name = "articles"

    db = Database(Base)
    change = Changes(OutboxMessage, RequestKey)
    cursor_key = CursorKey()
    search = Search(Article)

    @rpc
    @writes
    def create(self, payload):
        """Store a new article; ``authorUID`` is required (the gateway sets the caller)."""
        return article_items.create(self.change, payload)

    @rpc
    def get(self, article_id):
        return article_items.get(self.db.reads, article_id)

    @rpc
    def list(self, limit=None, cursor=None, **filters):
        """``{"items": [...], "nextCursor": ...}``, newest first; ``filters``:
        ``tag``, ``q`` (a full-text search: best match first, of the newest
        ``SEARCH_MAX_MATCHES`` matches); another name is a ``BadRequest``
        naming it, a ``q`` of only exclusions a ``ValidationError``."""
        params = {"limit": limit, "cursor": cursor, **filters}
        return article_items.list(
            self.db.reads,
            params,
            secret=self.cursor_key,
            search=self.search,
        )

    @rpc
    @writes
    def update(self, article_id, payload, expected_author=None):
        """Change the fields sent; with ``expected_author``, only that author's article."""
        return article_items.update(self.change, article_id, payload, expected_author)

    @rpc
    @writes
    def delete(self, article_id, expected_author=None):
        return article_items.delete(self.change, article_id, expected_author)

    @rpc
    def health(self):
        return self.db.health()
