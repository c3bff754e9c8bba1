from servicekit.news import NewsItemSchema, meta_field


class ArticleSchema(NewsItemSchema):
    """An article as the API shows it (to everyone: nothing in it is private)."""

    meta = meta_field("likes")


article_schema = ArticleSchema()
