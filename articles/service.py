"""Articles: news items written by users, listed newest first and by tag.

Every change is announced with ``article_added``/``article_updated``/
``article_deleted`` through the outbox, committed with the change. What
articles share with events lives in the ``news`` package.
"""

from news.items import NewsItems
from servicekit.base import ServiceBase
from servicekit.db import Database
from servicekit.outbox import Outbox
from servicekit.rpc import rpc

from .models import Article, ArticleTag, Base, OutboxMessage
from .schemas import ArticleSchema

article_items = NewsItems("article", Article, ArticleTag, ArticleSchema())


class ArticlesService(ServiceBase):
    name = "articles"

    db = Database(Base)
    outbox = Outbox(OutboxMessage)

    @rpc
    def create(self, payload):
        """Store a new article; ``authorUID`` is required (the gateway sets the caller)."""
        return article_items.create(self.db.session, self.outbox, payload)

    @rpc
    def get(self, article_id):
        return article_items.get(self.db.reads, article_id)

    @rpc
    def list(self, limit=None, cursor=None, **filters):
        """``{"items": [...], "nextCursor": ...}``, newest first; ``filters``:
        ``tag`` (another name is a ``BadRequest`` naming it)."""
        params = {"limit": limit, "cursor": cursor, **filters}
        return article_items.list(self.db.reads, self.config["JWT_SECRET"], params)

    @rpc
    def update(self, article_id, payload, expected_author=None):
        """Change the fields sent; with ``expected_author``, only that author's article."""
        return article_items.update(
            self.db.session, self.outbox, article_id, payload, expected_author
        )

    @rpc
    def delete(self, article_id, expected_author=None):
        return article_items.delete(self.db.session, self.outbox, article_id, expected_author)

    @rpc
    def health(self):
        return self.db.health()
