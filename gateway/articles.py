"""Routes of articles: public reads, writes by the author or an admin."""

from news.schemas import ArticleSchema, NewsListQuerySchema

from .apidoc import news_docs, news_views
from .authorship import NEWS_ACCESS, authored_by_caller, checked_author, expected_author
from .errors import json_response
from .http import http
from .requests import list_params, page_response, read_json

DOCS = news_docs(
    "articles",
    "article",
    news_views("Article", ArticleSchema, "likes"),
    NewsListQuerySchema,
    NEWS_ACCESS,
)


class ArticlesRoutes:
    @http("GET", "/api/articles", cached="articles", doc=DOCS["list"])
    def list_articles(self, request):
        params = list_params(request, "tag", "q")
        return page_response(request, self.articles_rpc.list(**params), params)

    @http("GET", "/api/articles/<article_id>", cached="articles", doc=DOCS["get"])
    def get_article(self, request, article_id):
        return json_response(self.articles_rpc.get(article_id))

    @http("POST", "/api/articles", changes="articles", doc=DOCS["create"])
    def create_article(self, request):
        caller, body = self.auth.caller(request), read_json(request)
        key = self.request_keys.of(request, caller, body)
        article = self.articles_rpc.create(authored_by_caller(caller, body), request_key=key)
        return json_response(article, 201, {"Location": f"/api/articles/{article['id']}"})

    @http("PUT", "/api/articles/<article_id>", changes="articles", doc=DOCS["update"])
    def update_article(self, request, article_id):
        caller, body = self.auth.caller(request), read_json(request)
        key = self.request_keys.of(request, caller, body)
        body = checked_author(caller, body)
        article = self.articles_rpc.update(
            article_id, body, expected_author(caller), request_key=key
        )
        return json_response(article)

    @http("DELETE", "/api/articles/<article_id>", changes="articles", doc=DOCS["delete"])
    def delete_article(self, request, article_id):
        caller = self.auth.caller(request)
        key = self.request_keys.of(request, caller)
        article = self.articles_rpc.delete(article_id, expected_author(caller), request_key=key)
        return json_response(article)
