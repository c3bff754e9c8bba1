"""Benchmark: the time of one page of ``list`` with 100 and with 100,000 articles.

    .venv/bin/python -m scripts.bench_list [--sizes 100 100000] [--rounds 200]

Loads articles with COPY into a scratch database (``bench_articles``), runs
the articles service as its own ``nameko run`` process on a scratch vhost,
and times, for each size:

- ``rpc``: ``n.rpc.articles.list(...)`` from a client, through RabbitMQ, the
  service and PostgreSQL and back;
- ``direct``: the service's own list code (``ArticlesService.page``) in a
  plain session: the query, the cursor and the marshmallow dump, no broker.

Cases, each a full page of 20: the first page, a page from the middle (by
cursor), a tag on 50 rows spread over the table, and a tag on the 50 oldest
rows only (what defeats a GIN index: the newest rows are read first). At the largest size the
plan PostgreSQL used for each case is printed too. Prints figures, asserts
nothing; the database and the vhost are removed afterwards.
"""

import argparse
import csv
import io
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

import requests
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from articles.service import ArticlesService
from servicekit.config import ROOT, database_url, load_config
from servicekit.db import make_engine
from servicekit.migrations import create_database, drop_database, migrate
from servicekit.pagination import encode_cursor

DATABASE = "bench_articles"
RABBITMQ_API = os.environ.get("RABBITMQ_API", "http://guest:guest@localhost:15672/api")
COLUMNS = "id, author_uid, title, description, body, status, tags, images_uid, likes, created_at, updated_at"
TAGGED = 50  # rows with each tag, at every size
BODY = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 6


def load_rows(engine, count):
    """``count`` articles, one a second back from now, with COPY (the tag
    index is filled by its trigger, as for any insert)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    now = datetime.now(UTC)
    for i in range(count):
        tags = ["every"] + (["spread"] if i % (count // TAGGED) == 0 else [])
        if i >= count - TAGGED:
            tags.append("oldest")
        created = (now - timedelta(seconds=i)).isoformat()
        tags_literal = "{" + ",".join(tags) + "}"
        row = [uuid.uuid4(), "bench", f"Article {i}", "A description.", BODY, 0, tags_literal]
        writer.writerow([*row, "{}", 0, created, created])
    buffer.seek(0)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            cur.execute("TRUNCATE articles CASCADE")
            cur.copy_expert(f"COPY articles ({COLUMNS}) FROM STDIN WITH (FORMAT csv)", buffer)
            cur.execute("ANALYZE articles; ANALYZE article_tags")
        raw.commit()
    finally:
        raw.close()


def cases(engine, secret, count):
    """name -> list parameters."""
    with Session(engine) as session:
        middle = session.execute(
            text("SELECT created_at, id FROM articles ORDER BY created_at DESC, id DESC OFFSET :n"),
            {"n": count // 2},
        ).first()
    return {
        "first page": {"limit": 20},
        "middle page": {"limit": 20, "cursor": encode_cursor(secret, *middle)},
        "tag on 50 spread": {"limit": 20, "tag": "spread"},
        "tag on 50 oldest": {"limit": 20, "tag": "oldest"},
    }


def timed(call, rounds):
    call()  # warm up: connections, caches, the plan
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), statistics.quantiles(times, n=20)[-1]


def plan(engine, secret, params):
    """The plan and time PostgreSQL reports for the query ``page`` runs."""
    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        page(engine, secret, params)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    statement, parameters = statements[-1]
    with engine.connect() as conn:
        lines = conn.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF) " + statement, parameters)
        lines = [line for (line,) in lines]
    scans = [line.strip().lstrip("-> ") for line in lines if "Scan" in line]
    return "; ".join(scans), lines[-1].strip()


@contextmanager
def scratch_vhost(amqp_uri):
    vhost = f"bench_list_{os.getpid()}"
    user = urlsplit(amqp_uri).username or "guest"
    api = RABBITMQ_API.rstrip("/")
    requests.put(f"{api}/vhosts/{quote(vhost, safe='')}", timeout=10).raise_for_status()
    requests.put(
        f"{api}/permissions/{quote(vhost, safe='')}/{quote(user, safe='')}",
        json={"configure": ".*", "write": ".*", "read": ".*"},
        timeout=10,
    ).raise_for_status()
    try:
        yield amqp_uri.rstrip("/") + "/" + quote(vhost, safe="")
    finally:
        requests.delete(f"{api}/vhosts/{quote(vhost, safe='')}", timeout=10)


@contextmanager
def articles_service(amqp_uri, db_url):
    env = {**os.environ, "AMQP_URI": amqp_uri, "ARTICLES_DB_URL": db_url, "LOG_LEVEL": "WARNING"}
    cmd = [sys.executable, "-m", "nameko", "run", "--config", "config.yml", "articles.service"]
    process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)  # nameko's graceful stop
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_for(proxy, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return proxy.health()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main():
    # Readiness polls close channels with confirms in flight; py-amqp warns.
    logging.getLogger("amqp").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 100_000])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()

    config = load_config()
    secret = config["JWT_SECRET"]
    url = make_url(database_url(config, "articles")).set(database=DATABASE)
    url = url.render_as_string(hide_password=False)
    drop_database(url)
    create_database(url)
    migrate("articles", url)
    # Pooled, with a session a call: as the service's workers have.
    engine = make_engine(url)
    try:
        with scratch_vhost(config["AMQP_URI"]) as amqp_uri, articles_service(amqp_uri, url):
            rpc_config = {**config, "AMQP_URI": amqp_uri}
            with ServiceRpcProxy("articles", rpc_config, timeout=30) as articles:
                wait_for(articles)
                run(engine, secret, articles, args)
    finally:
        engine.dispose()
        drop_database(url)


def page(engine, secret, params):
    with Session(engine) as session:
        return ArticlesService.page(session, secret, params)


def run(engine, secret, articles, args):
    print(f"{'rows':>8}  {'case':<17} {'path':<7} {'median ms':>9} {'p95 ms':>7}")
    for count in args.sizes:
        started = time.perf_counter()
        load_rows(engine, count)
        print(f"{count:>8}  (loaded with COPY in {time.perf_counter() - started:.1f} s)")
        for name, params in cases(engine, secret, count).items():
            direct = timed(lambda p=params: page(engine, secret, p), args.rounds)
            rpc = timed(lambda p=params: articles.list(**p), args.rounds)
            for path, (median, p95) in (("direct", direct), ("rpc", rpc)):
                print(f"{count:>8}  {name:<17} {path:<7} {median:>9.2f} {p95:>7.2f}")
            if count == max(args.sizes):
                scans, total = plan(engine, secret, params)
                print(f"{'':>10}plan: {scans} ({total})")


if __name__ == "__main__":
    main()
