"""Bench-only variants of two services: the references the figures are divided by.

Production code has no bench routes; ``make bench`` runs these classes with
``nameko run bench.stack:BenchGateway`` (and ``:BenchArticles``). The service
names stay ``gateway`` and ``articles``, so everything else sees the usual
services.
"""

import psycopg2
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

from articles.service import ArticlesService
from gateway.errors import json_response
from gateway.http import http
from gateway.service import GatewayService
from servicekit.config import database_url
from servicekit.rpc import rpc


class RawArticlesConnection(DependencyProvider):
    """A psycopg2 connection to the articles database for each worker,
    autocommit, no pool library, no ORM: ``pg_read``'s way to PostgreSQL.
    (psycopg2 waits green under eventlet: a connection serves one query at
    a time.)"""

    def setup(self):
        self.url = database_url(self.container.config, "articles")
        self.idle = []  # connections no worker holds
        self.held = {}  # worker context -> its connection

    def stop(self):
        while self.idle:
            self.idle.pop().close()

    kill = stop

    def get_dependency(self, worker_ctx):
        if self.idle:
            connection = self.idle.pop()
        else:
            connection = psycopg2.connect(self.url)
            connection.autocommit = True
        self.held[worker_ctx] = connection
        return connection

    def worker_teardown(self, worker_ctx):
        self.idle.append(self.held.pop(worker_ctx))


class BenchGateway(GatewayService):
    @http("GET", "/bench/ceiling")
    def bench_ceiling(self, request):
        # The `ceiling`: the gateway's own WSGI app and a worker, no RPC.
        return json_response({"status": "ok"})

    articles_db = RawArticlesConnection()

    @http("GET", "/bench/pg_read/<article_id>")
    def bench_pg_read(self, request, article_id):
        # `pg_read`: the ceiling plus one primary-key read from PostgreSQL
        # (the row as JSON, made by PostgreSQL): what of read_cold is the
        # database's, and what is the RPC's and the service's.
        with self.articles_db.cursor() as cursor:
            cursor.execute(
                "SELECT row_to_json(a)::text FROM articles a WHERE id = %s", (article_id,)
            )
            row = cursor.fetchone()
        if row is None:
            return json_response({"error": "NOT_FOUND"}, 404)
        return Response(row[0], content_type="application/json")

    @http("GET", "/bench/echo")
    def bench_echo(self, request):
        # `rpc_echo`: exactly one empty RPC round trip on top of the ceiling.
        return json_response(self.articles_rpc.echo())


class BenchArticles(ArticlesService):
    @rpc
    def echo(self):
        return {}
