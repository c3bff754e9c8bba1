"""Bench-only variants of two services: the references the figures are divided by.

Production code has no bench routes; ``make bench`` runs these classes with
``nameko run bench.stack:BenchGateway`` (and ``:BenchArticles``). The service
names stay ``gateway`` and ``articles``, so everything else sees the usual
services.
"""

from articles.service import ArticlesService
from gateway.errors import json_response
from gateway.http import http
from gateway.service import GatewayService
from servicekit.rpc import rpc


class BenchGateway(GatewayService):
    @http("GET", "/bench/ceiling")
    def bench_ceiling(self, request):
        # The `ceiling`: the gateway's own WSGI app and a worker, no RPC.
        return json_response({"status": "ok"})

    @http("GET", "/bench/echo")
    def bench_echo(self, request):
        # `rpc_echo`: exactly one empty RPC round trip on top of the ceiling.
        return json_response(self.articles_rpc.echo())


class BenchArticles(ArticlesService):
    @rpc
    def echo(self):
        return {}
