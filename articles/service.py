"""Articles: news items written by users, listed newest first and by tag.

Every change is announced with ``article_added``/``article_updated``/
``article_deleted`` through the outbox, committed with the change. What
articles share with events lives in the ``news`` package.
"""

from news.items import NewsItems
from news.search import SearchLanguage
from servicekit.base import ServiceBase
from servicekit.db import Database
from servicekit.outbox import Outbox
from servicekit.request_keys import RequestKeys
from servicekit.rpc import rpc

from .models import Article, ArticleTag, Base, OutboxMessage, RequestKey
from .schemas import ArticleSchema

article_items = NewsItems("article", Article, ArticleTag, ArticleSchema())


class ArticlesService(ServiceBase):
    name = "articles"

    db = Database(Base)
    outbox = Outbox(OutboxMessage)
    request_keys = RequestKeys(RequestKey)
    search_language = SearchLanguage(Article)

    @rpc
    def create(self, payload, request_key=None):
        """Store a new article; ``authorUID`` is required (the gateway sets the caller)."""
        claim = self.request_keys.claim(self.db.session, request_key)
        return article_items.create(self.db.session, self.outbox, payload, claim)

    @rpc
    def get(self, article_id):
        return article_items.get(self.db.reads, article_id)

    @rpc
    def list(self, limit=None, cursor=None, **filters):
        """``{"items": [...], "nextCursor": ...}``, newest first; ``filters``:
        ``tag``, ``q`` (a full-text search: best match first); another name is a
        ``BadRequest`` naming it."""
        params = {"limit": limit, "cursor": cursor, **filters}
        return article_items.list(
            self.db.reads,
            params,
            secret=self.config["JWT_SECRET"],
            language=self.search_language,
        )

    @rpc
    def update(self, article_id, payload, expected_author=None, request_key=None):
        """Change the fields sent; with ``expected_author``, only that author's article."""
        claim = self.request_keys.claim(self.db.session, request_key)
        return article_items.update(
            self.db.session, self.outbox, article_id, payload, expected_author, claim
        )

    @rpc
    def delete(self, article_id, expected_author=None, request_key=None):
        claim = self.request_keys.claim(self.db.session, request_key)
        return article_items.delete(
            self.db.session, self.outbox, article_id, expected_author, claim
        )

    @rpc
    def health(self):
        return self.db.health()
