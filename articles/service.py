"""Articles: news items written by users, listed newest first and by tag.

Every change is announced with ``article_added``/``article_updated``/
``article_deleted`` through the outbox, committed with the change. The RPCs
(create, get, list, update, delete, health) come from the shared
:class:`~servicekit.news.NewsItemService`; this module names what is the
articles' own.
"""

from servicekit import news
from servicekit.db import Database
from servicekit.outbox import Outbox

from .models import Article, ArticleTag, Base, OutboxMessage
from .schemas import article_schema


# The base is reached through its module: `nameko run articles.service` starts
# every class with entrypoints that it finds in this module's namespace.
class ArticlesService(news.NewsItemService):
    name = "articles"
    resource = "article"
    model = Article
    tag_model = ArticleTag
    schema = article_schema

    db = Database(Base)
    outbox = Outbox(OutboxMessage, Base)
