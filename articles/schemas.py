from news.schemas import MetaCounters, NewsItemSchema


class ArticleSchema(NewsItemSchema):
    """An article as the API shows it (to everyone: nothing in it is private)."""

    meta = MetaCounters("likes")
