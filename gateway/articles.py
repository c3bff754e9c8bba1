"""Routes of articles: public reads, writes by the author or an admin."""

from .authorship import authored_by_caller, checked_author, expected_author
from .errors import json_response
from .http import http
from .requests import list_params, page_response, read_json


class ArticlesRoutes:
    @http("GET", "/api/articles", cached="articles")
    def list_articles(self, request):
        params = list_params(request, "tag")
        return page_response(request, self.articles_rpc.list(**params), params)

    @http("GET", "/api/articles/<article_id>", cached="articles")
    def get_article(self, request, article_id):
        return json_response(self.articles_rpc.get(article_id))

    @http("POST", "/api/articles")
    def create_article(self, request):
        body = authored_by_caller(self.auth.caller(request), read_json(request))
        article = self.articles_rpc.create(body)
        self.cache.invalidate("articles", article["id"])
        return json_response(article, 201, {"Location": f"/api/articles/{article['id']}"})

    @http("PUT", "/api/articles/<article_id>")
    def update_article(self, request, article_id):
        caller = self.auth.caller(request)
        body = checked_author(caller, read_json(request))
        article = self.articles_rpc.update(article_id, body, expected_author(caller))
        self.cache.invalidate("articles", article_id)
        return json_response(article)

    @http("DELETE", "/api/articles/<article_id>")
    def delete_article(self, request, article_id):
        caller = self.auth.caller(request)
        article = self.articles_rpc.delete(article_id, expected_author(caller))
        self.cache.invalidate("articles", article_id)
        return json_response(article)
