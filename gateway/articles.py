"""Routes of articles: public reads, writes by the author or an admin."""

from .authorship import authored_by_caller, checked_author, expected_author
from .errors import json_response
from .http import http
from .requests import list_params, page_response, read_json, request_key


class ArticlesRoutes:
    @http("GET", "/api/articles", cached="articles")
    def list_articles(self, request):
        params = list_params(request, "tag", "q")
        return page_response(request, self.articles_rpc.list(**params), params)

    @http("GET", "/api/articles/<article_id>", cached="articles")
    def get_article(self, request, article_id):
        return json_response(self.articles_rpc.get(article_id))

    @http("POST", "/api/articles")
    def create_article(self, request):
        caller, body = self.auth.caller(request), read_json(request)
        key = request_key(request, caller, body)
        article = self.articles_rpc.create(authored_by_caller(caller, body), request_key=key)
        self.cache.invalidate("articles", article["id"])
        return json_response(article, 201, {"Location": f"/api/articles/{article['id']}"})

    @http("PUT", "/api/articles/<article_id>")
    def update_article(self, request, article_id):
        caller, body = self.auth.caller(request), read_json(request)
        key = request_key(request, caller, body)
        body = checked_author(caller, body)
        article = self.articles_rpc.update(
            article_id, body, expected_author(caller), request_key=key
        )
        self.cache.invalidate("articles", article_id)
        return json_response(article)

    @http("DELETE", "/api/articles/<article_id>")
    def delete_article(self, request, article_id):
        caller = self.auth.caller(request)
        key = request_key(request, caller)
        article = self.articles_rpc.delete(article_id, expected_author(caller), request_key=key)
        self.cache.invalidate("articles", article_id)
        return json_response(article)
