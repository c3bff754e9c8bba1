"""``make bench`` (``python -m bench``): how fast the backend is, as ratios
taken within one run.

    make bench                                        # about 6 minutes on 2 cores
    make bench BENCH_ARGS="--rounds 5 --seconds 10"   # steadier, slower
    .venv/bin/python -m bench --help

The bench starts a stack of its own: a scratch RabbitMQ vhost, scratch
databases ``bench_<service>`` (articles seeded with COPY: 1,000 rows, then
1,000,000), an SMTP sink in this process, and each service as its own
``nameko run`` process: two gateway copies sharing one port (``--port``, read
cache on) and one more on ``--cold-port`` with the read cache off, plus the
bench variants of ``bench/stack.py``; for the live feed's figures only, one
more gateway on ``--feed-port`` (read cache on). It removes all of it at the
end, also on Ctrl-C or failure. The services' logs of the last run are in
``bench/results/logs/``.

Reading the table. Absolute req/s and latencies drift with whatever else the
machine does, so every target is a ratio (or a percentile) against a
reference taken in the same run, and the wrk figures are interleaved in
rounds (the medians are shown) so that drift hits them alike. ``checked`` is
the number a target applies to, ``what`` says what it is, ``met`` whether the
target is; rows without a target are there to explain the others.

- ``ceiling``: a trivial gateway route, no RPC: what one gateway copy can do
  at all. ``rpc_echo``: the same plus one empty RPC.
- ``read_hot``/``list_hot``: one of 10 articles, and the first list page, on
  one gateway copy. ``read_hot_all``/``list_hot_all``: the same on both
  copies of the shared port, against ``ceiling_phase2``: the ceiling of one
  copy again (on the cache-off gateway, the same code), in the same rounds.
- ``read_cold``: 100,000 distinct articles on the cache-off gateway.
  ``pg_read``: the same articles read by the cache-off gateway's own worker
  straight from PostgreSQL (one primary-key ``SELECT`` on a raw psycopg2
  connection, the row made JSON by PostgreSQL): how much of a cold read is
  the database's, and how much the RPC's and the service's.
- ``list_deep``: a page 900,000 rows deep in 1,000,000 against the first page
  when the table had 1,000 rows (p50 of 200 sequential requests), each
  counted in empty RPCs taken in turn with it, since the two are a minute
  apart; the row below compares the deep page with the first page taken in
  turn with it, which drift cannot skew either.
- ``search``: ``?q=`` a word that 10 of the 1,000,000 rows have (p50 of 200
  sequential requests on the cache-off gateway), each taking turns with a
  read of another article by id there (``read_cold``'s request); the notes
  name the plan's scans (the GIN index), the JSON has the whole plan.
- ``search_common``: the same for a word that one row in ten has (100,000
  of 1,000,000), with other reads by id: a search ranks only the newest
  ``SEARCH_MAX_MATCHES`` matches (1,000), so its p99 is held against
  ``read_cold``'s p50 taken in turn with it.
- ``feed_idle``: idle clients of the live feed (``GET /api/feed``) held by
  one gateway process, ``gateway_feed``, alone on ``--feed-port``: connected,
  past the 200 and the ``retry:`` line, and still there after the round's
  measures; the fewest of the rounds (each connects 1,000 anew).
- ``feed_fanout``: with them connected, 20 new articles a second apart, from
  each one's ``createdDate`` (stamped in its transaction, a hair before the
  commit) to its message at each client, over all 20,000 pairs.
  ``feed_delivery``: from the ``POST``'s answer to the message at one more,
  dedicated client.
- ``feed_rss``: that gateway's resident memory with the 1,000 clients, less
  before them, per client.
- ``read_hot_feed``: ``read_hot`` on that gateway with the 1,000 clients
  connected, against ``read_hot_no_feed`` without them, in the same rounds
  (the dedicated client is connected in both).
- ``write``: ``POST /api/articles`` with wrk; ``notification_lag``: from an
  article's ``createdDate`` to its mail at the sink, 50 articles/s.
- ``staleness``: after a PUT, until every gateway copy serves the new version.
- ``rss``: each process's resident memory at the end ÷ once it had served
  one request of each kind.

The same figures, every wrk run, the machine and the settings are in
``bench/results/latest.json`` (and a copy named by the time). The bench
asserts nothing: it exits 0 when it could run the stack, whatever the
figures, and 1 with one line saying why when it could not.
"""

import argparse
import http.client
import os
import signal
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from news.search import DEFAULT_LANGUAGE, DEFAULT_MAX_MATCHES, SearchSettings
from servicekit.config import database_url, load_config
from servicekit.pagination import cursor_key
from tools.bootstrap import reach_broker, reach_postgres

from . import load, measures, report
from .client import Client, client_on_copy
from .data import COMMON_WORD, RARE_WORD, SeededArticles
from .feed import FeedClients, allow_descriptors
from .infra import (
    CannotRun,
    bootstrap,
    drop_databases,
    find_wrk,
    refuse_busy_ports,
    scratch_database_urls,
    scratch_vhost,
)
from .mail import MailSink
from .processes import ServiceGroup, connection_owners, socket_count

FIRST_ROWS = 1_000
HOT_IDS = 10
COLD_IDS = 100_000
STALENESS_TRIALS = 100
LIST_REQUESTS = 200
FIRST_PAGE = "/api/articles?limit=20"
ECHO = "/bench/echo"
DEEP_FRACTION = 0.9  # list_deep's cursor: this far down the table
SEARCH_REQUESTS = 200
SEARCH_PATH = f"/api/articles?q={RARE_WORD}&limit=20"
SEARCH_COMMON_PATH = f"/api/articles?q={COMMON_WORD}&limit=20"
FEED_CLIENTS = 1_000
FEED_WARMUP_CLIENTS = 10
FEED_CHANGES = 20
FEED_PAUSE_SECONDS = 1.0
FEED_SWEEP_SECONDS = 2.0  # for the server's failed writes to the clients that left
STARTUP_TIMEOUT = 120
LOG_DIR = report.RESULTS_DIR / "logs"


def parse_args():
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8180, help="the two cache-on gateways")
    parser.add_argument("--cold-port", type=int, default=8181, help="the cache-off gateway")
    parser.add_argument("--feed-port", type=int, default=8182, help="the live feed's gateway")
    parser.add_argument("--rows", type=int, default=1_000_000, help="articles for the deep page")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the wrk figures")
    parser.add_argument("--seconds", type=int, default=5, help="length of one wrk run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=20, help="wrk connections")
    parser.add_argument("--write-seconds", type=int, default=3, help="length of the write run")
    parser.add_argument("--lag-rate", type=float, default=50.0, help="articles/s for the lag")
    parser.add_argument("--lag-seconds", type=float, default=10.0, help="how long to post them")
    return parser.parse_args()


class Progress:
    """One line per step on stderr, with the time since the start."""

    def __init__(self):
        self.started = time.monotonic()

    def __call__(self, message):
        minutes, seconds = divmod(int(time.monotonic() - self.started), 60)
        print(f"bench [{minutes}:{seconds:02d}] {message}", file=sys.stderr, flush=True)


def main():
    args = parse_args()
    progress = Progress()
    started = datetime.now(UTC)
    # SIGTERM as Ctrl-C: either way the stack is removed before we exit. And
    # SIGINT handled even when started in the background (which ignores it,
    # and so would the services, which are stopped with it).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    try:
        results = Bench(args, progress).run()
    except CannotRun as exc:
        print(f"bench: cannot run the stack: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; the stack is removed", file=sys.stderr)
        return 130
    results["started"] = started.isoformat(timespec="seconds")
    results["wall_seconds"] = round(time.monotonic() - progress.started, 1)
    results["checks"] = [check.evaluate(results["figures"]) for check in report.CHECKS]
    path = report.write_json(results)
    print(report.render(results, path))
    return 0


@contextmanager
def cleanup_at_exit():
    """An ExitStack whose cleanup a second Ctrl-C cannot cut short: stopping
    the services, dropping the databases and the vhost take a few seconds."""
    with ExitStack() as stack:
        try:
            yield stack
        finally:
            print("bench: stopping the stack and removing its data", file=sys.stderr, flush=True)
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, signal.SIG_IGN)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)


class Bench:
    """One run, phase by phase; ``figures`` fills as it goes."""

    def __init__(self, args, progress):
        self.args = args
        self.progress = progress
        self.wrk = load.Wrk(find_wrk(), args.threads, args.connections, args.seconds)
        self.cached_url = f"http://127.0.0.1:{args.port}"
        self.uncached_url = f"http://127.0.0.1:{args.cold_port}"
        self.figures = {}
        self.idle_mb = {}
        self.load_at_start = os.getloadavg()[0]  # others' work on the machine skews the figures

    def run(self):
        refuse_busy_ports(self.args.port, self.args.cold_port, self.args.feed_port)
        config = load_config()  # the user's settings: where RabbitMQ and PostgreSQL are
        check_reachable(config)
        with cleanup_at_exit() as cleanup:
            self.start_stack(cleanup, config)
            self.measure_list_deep()
            self.pick_articles()
            self.measure_search()
            one_copy = ("ceiling", "rpc_echo", "pg_read", "read_hot", "list_hot", "read_cold")
            self.measure_rounds("one gateway copy", one_copy)
            self.measure_feed()
            self.start_second_copy()
            two_copies = ("ceiling_phase2", "read_hot_all", "list_hot_all")
            self.measure_rounds("two gateway copies", two_copies)
            self.measure_staleness()
            self.measure_writes()
            self.services.check_running()
            self.figures["rss"] = measures.memory(self.idle_mb, self.services.rss_mb())
            machine = report.machine(self.wrk.path, self.db_urls["articles"], self.amqp_uri)
            machine["load_average_start"] = self.load_at_start
        settings = {"wrk": self.wrk.describe(), **vars(self.args)}
        return {
            "machine": machine,
            "settings": settings,
            "seeding": self.seeding,
            "figures": self.figures,
        }

    def start_stack(self, cleanup, config):
        """The vhost, the databases with the first rows, the mail sink and the
        services; each removed again by ``cleanup``."""
        args = self.args
        self.amqp_uri = cleanup.enter_context(
            scratch_vhost(config["AMQP_URI"], f"bench_{os.getpid()}")
        )
        self.sink = cleanup.enter_context(MailSink())
        self.db_urls = scratch_database_urls(config)
        drop_databases(self.db_urls)  # left over by a run that was killed
        cleanup.callback(drop_databases, self.db_urls)
        # This process reads config.yml as the services do: the same environment.
        os.environ.update(stack_environment(self.amqp_uri, self.db_urls, self.sink, args.port))
        self.config = load_config()
        self.progress("creating and migrating the bench databases")
        bootstrap(os.environ)
        self.articles = SeededArticles(self.db_urls["articles"])
        cleanup.callback(self.articles.close)
        self.articles.grow_to(FIRST_ROWS)
        self.workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))

        self.progress("starting the services")
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.services = ServiceGroup(os.environ, LOG_DIR)
        cleanup.callback(self.services.stop)
        for name in ("events", "users", "auth", "notification"):
            self.services.start(name, f"{name}.service")
        self.services.start("articles", "bench.stack:BenchArticles")
        self.services.start("gateway_1", "bench.stack:BenchGateway")
        self.services.start(
            "gateway_uncached",
            "bench.stack:BenchGateway",
            GATEWAY_PORT=str(args.cold_port),
            CACHE_MAX_ENTRIES="0",
        )
        for port in (args.port, args.cold_port):
            wait_healthy(self.services, port)
        self.token = admin_token(self.services, args.port, self.config)

    def measure_list_deep(self):
        """The first page at 1,000 rows; the table grown; a page deep in it.
        Each list page takes turns with ``/bench/echo`` (one empty RPC), and
        is counted in echoes: the two phases are a minute apart, and the
        machine may be busier in the second (loading a million rows leaves
        PostgreSQL writing for a while); the echo drifts with it. Memory is
        taken as idle in between, once every kind of request was served."""
        uncached = Client(self.args.cold_port, self.token)
        self.progress(f"list_deep: the first page at {FIRST_ROWS:,} rows")
        first_page, echo_then = measures.sequential(uncached, [FIRST_PAGE, ECHO], LIST_REQUESTS)
        self.some_id = self.articles.sample_ids(1)[0]
        for port in (self.args.port, self.args.cold_port):
            client = Client(port, self.token)
            serve_one_of_each(client, self.some_id)
            client.close()
        self.idle_mb = self.services.rss_mb()

        rows = self.args.rows
        self.progress(f"growing the articles to {rows:,} rows with COPY")
        started = time.monotonic()
        self.articles.grow_to(rows)
        # With the triggers' work (tags, search vectors) and the table settled.
        self.seeding = {"rows": rows, "seconds": round(time.monotonic() - started, 1)}
        self.progress("list_deep: a deep page")
        secret = cursor_key(self.config)
        deep_cursor = self.articles.cursor_at(secret, int(rows * DEEP_FRACTION))
        deep_page, echo_now, first_page_now = measures.sequential(
            uncached, [f"{FIRST_PAGE}&cursor={deep_cursor}", ECHO, FIRST_PAGE], LIST_REQUESTS
        )
        uncached.close()
        self.figures["list_deep"] = {
            **deep_page,
            "first_page": first_page,
            "first_page_now": first_page_now,
            "echo_then": echo_then,
            "echo_now": echo_now,
            "ratio": (deep_page["p50_ms"] / echo_now["p50_ms"])
            / (first_page["p50_ms"] / echo_then["p50_ms"]),
            "ratio_now": deep_page["p50_ms"] / first_page_now["p50_ms"],
            "plan": self.articles.page_plan(secret, {"limit": 20, "cursor": deep_cursor}),
        }

    def pick_articles(self):
        """The hot set (read once, on the one gateway copy so far), the cold
        ids and the articles the staleness trials update."""
        searched = SEARCH_REQUESTS + 5  # and the warm-up's
        sample = self.articles.sample_ids(HOT_IDS + STALENESS_TRIALS + 2 * searched + COLD_IDS)
        self.hot_ids, sample = sample[:HOT_IDS], sample[HOT_IDS:]
        self.staleness_ids, sample = sample[:STALENESS_TRIALS], sample[STALENESS_TRIALS:]
        self.search_read_ids, sample = sample[:searched], sample[searched:]
        self.search_common_read_ids, sample = sample[:searched], sample[searched:]
        self.hot_file = self.workdir / "hot.txt"
        self.hot_file.write_text("\n".join(self.hot_ids) + "\n")
        self.cold_file = self.workdir / "cold.txt"
        self.cold_file.write_text("\n".join(sample) + "\n")
        client = Client(self.args.port)
        read_each(client, self.hot_ids)
        client.close()

    def measure_search(self):
        """A word in a few rows of the whole table (``data.RARE_WORD``), then
        one in a tenth of them (``data.COMMON_WORD``), on the cache-off
        gateway, each search taking turns with a read of another article by
        id there (``read_cold``, one request at a time): the search against
        the cheapest answer that reaches the database."""
        rows = self.articles.count
        self.progress(f"search: {RARE_WORD!r} in {rows:,} rows, in turn with reads")
        figure = self.search_figure(SEARCH_PATH, RARE_WORD, self.search_read_ids)
        self.figures["search"] = {**figure, "rows_with_word": self.articles.rare_rows}
        self.progress(f"search_common: {COMMON_WORD!r} in {rows:,} rows, in turn with reads")
        figure = self.search_figure(SEARCH_COMMON_PATH, COMMON_WORD, self.search_common_read_ids)
        self.figures["search_common"] = {
            **figure,
            "rows_with_word": self.articles.common_rows,
            "max_matches": search_settings(self.config).max_matches,
        }

    def search_figure(self, search_path, word, read_ids):
        client = Client(self.args.cold_port)
        read_paths = [f"/api/articles/{article_id}" for article_id in read_ids]
        found, read, answer = measures.search_against_reads(client, search_path, read_paths)
        client.close()
        params = {"q": word, "limit": 20}
        return {
            **found,
            "read_cold": read,
            "ratio": found["p50_ms"] / read["p50_ms"],
            "ratio_p99": found["p99_ms"] / read["p50_ms"],
            "matches": len(answer),
            "plan": self.articles.page_plan(
                cursor_key(self.config), params, search_settings(self.config)
            ),
        }

    def wrk_targets(self):
        """What each wrk figure loads."""
        cached, uncached, split = self.cached_url, self.uncached_url, self.connections_per_copy
        return {
            "ceiling": load.Target(f"{cached}/bench/ceiling"),
            "rpc_echo": load.Target(f"{cached}/bench/echo"),
            "pg_read": load.Target(f"{uncached}/bench/pg_read/", self.cold_file),
            "read_hot": load.Target(f"{cached}/api/articles/", self.hot_file),
            "list_hot": load.Target(cached + FIRST_PAGE),
            "read_cold": load.Target(f"{uncached}/api/articles/", self.cold_file),
            # With two copies on the cached port; the ceiling of one copy again
            # in the same rounds, as their reference.
            "ceiling_phase2": load.Target(f"{uncached}/bench/ceiling"),
            "read_hot_all": load.Target(f"{cached}/api/articles/", self.hot_file, split),
            "list_hot_all": load.Target(cached + FIRST_PAGE, watch=split),
        }

    def measure_rounds(self, title, names):
        self.progress(f"{title}: {', '.join(names)}")
        targets = {name: self.wrk_targets()[name] for name in names}
        self.figures.update(load.interleaved(self.wrk, targets, self.args.rounds, self.progress))
        self.services.check_running()

    def measure_feed(self):
        """The live feed on a gateway process of its own, ``gateway_feed``,
        alone on ``--feed-port`` (every feed client is on it, and its sockets
        say so) and stopped after: the memory its clients leave behind is
        not the ``rss`` figure's concern. Its read cache is on, as on
        ``--port``.

        A dedicated client stays connected throughout. After a warm-up of the
        route, each round: ``read_hot`` without the idle clients;
        ``FEED_CLIENTS`` idle clients connected; ``read_hot`` again; in the
        first round only, the fan-out of ``FEED_CHANGES`` new articles;
        whether every client is still there; then the idle clients reset and
        swept off the server. Memory per idle client: the first round's
        against before them.
        """
        args = self.args
        allow_descriptors()  # a thousand sockets here as on the gateway
        self.progress(f"feed: a gateway process of its own on port {args.feed_port}")
        gateway = self.services.start(
            "gateway_feed", "bench.stack:BenchGateway", GATEWAY_PORT=str(args.feed_port)
        )
        try:
            wait_healthy(self.services, args.feed_port)
            poster = Client(args.feed_port, self.token)
            read_each(poster, self.hot_ids)
            with FeedClients(args.feed_port) as feed:
                self.feed_rounds(gateway, poster, feed)
            poster.close()
            self.services.check_running()
        finally:
            self.services.stop_one("gateway_feed")

    def feed_rounds(self, gateway, poster, feed):
        args = self.args
        read_hot = load.Target(f"http://127.0.0.1:{args.feed_port}/api/articles/", self.hot_file)
        dedicated = feed.open(1)[0]
        self.progress("feed: warming up the route and read_hot")
        warm = feed.open(FEED_WARMUP_CLIENTS)
        measures.feed_fan_out(poster, warm, dedicated, 1, 0)
        self.sweep_feed(poster, feed, warm, dedicated)
        load.run_target(self.wrk, read_hot, args.rounds, args.rounds + 1, seconds=1)
        rss_before = gateway.rss_mb()
        runs = {"read_hot_no_feed": [], "read_hot_feed": []}
        rounds = []
        for round_index in range(args.rounds):
            self.progress(
                f"feed round {round_index + 1}/{args.rounds}: read_hot, "
                f"{FEED_CLIENTS:,} idle feed clients connected, read_hot"
            )
            stretch = (round_index, args.rounds + 1)
            runs["read_hot_no_feed"].append(load.run_target(self.wrk, read_hot, *stretch))
            sockets_before = socket_count(gateway.pid)
            started = time.monotonic()
            idle = feed.open(FEED_CLIENTS)
            one = {"open_s": round(time.monotonic() - started, 2)}
            one["held_once_open"] = self.held_on(gateway.pid, idle)
            if round_index == 0:
                rss_with = gateway.rss_mb()
            runs["read_hot_feed"].append(load.run_target(self.wrk, read_hot, *stretch))
            if round_index == 0:
                self.progress(f"feed: {FEED_CHANGES} new articles, {FEED_PAUSE_SECONDS:g} s apart")
                fanned_to = [client for client in idle if client.ready and client.open]
                feed.slowest_pass_ms = 0.0
                delays = measures.feed_fan_out(
                    poster, fanned_to, dedicated, FEED_CHANGES, FEED_PAUSE_SECONDS
                )
                # How late a message may have been stamped (bench/feed.py's docstring).
                slowest_pass_ms = feed.slowest_pass_ms
            one["held"] = self.held_on(gateway.pid, idle)
            one.update(feed.failures(idle))
            self.sweep_feed(poster, feed, idle, dedicated)
            # A dropped client's socket is closed by a later garbage collection.
            one["sockets_left"] = socket_count(gateway.pid) - sockets_before
            rounds.append(one)

        self.figures.update({name: load.median_of(name_runs) for name, name_runs in runs.items()})
        from_commit, from_answer, missing = delays
        self.figures["feed_idle"] = {
            "held": min(one["held"] for one in rounds),
            "process": "gateway_feed",
            "pid": gateway.pid,
            "clients": FEED_CLIENTS,
            "dedicated_held": dedicated.ready and dedicated.open,
            "rounds": rounds,
        }
        self.figures["feed_fanout"] = {
            **measures.percentiles(from_commit),
            "changes": FEED_CHANGES,
            "clients": len(fanned_to),
            "missing": missing,
            "reader_slowest_pass_ms": slowest_pass_ms,
        }
        # A message may come before the POST's answer is read: no wait at all.
        self.figures["feed_delivery"] = {
            **measures.percentiles([max(0.0, delay) for delay in from_answer]),
            "before_answer": sum(delay < 0 for delay in from_answer),
        }
        held = rounds[0]["held_once_open"]
        self.figures["feed_rss"] = {
            "kb_per_client": (rss_with - rss_before) * 1024 / held if held else None,
            "before_mb": rss_before,
            "with_mb": rss_with,
            "after_mb": gateway.rss_mb(),
            "clients": held,
        }

    def held_on(self, pid, clients):
        """How many of ``clients`` are connected, past the stream's start, to
        the process ``pid`` (by the sockets it has accepted)."""
        owners = connection_owners(self.args.feed_port, [pid])
        return sum(
            client.ready and client.open and owners.get(client.local_port) == pid
            for client in clients
        )

    def sweep_feed(self, poster, feed, clients, dedicated):
        """Reset ``clients``, then post one more change: the server's write of
        it to each fails at once, and drops the client (as its next
        heartbeat would, up to FEED_HEARTBEAT_SECONDS later). It writes to
        every client in one pass, the dedicated one among them: once that
        one has it, a short wait covers the rest."""
        feed.reset(clients)
        measures.feed_fan_out(poster, [], dedicated, 1, 0)
        time.sleep(FEED_SWEEP_SECONDS)

    def start_second_copy(self):
        """A second gateway on the same port; up once it served a connection
        of its own, which then makes one request of each kind and reads the hot set."""
        self.progress("starting a second gateway copy on the same port")
        second = self.services.start("gateway_2", "bench.stack:BenchGateway")
        self.copies = {"gateway_1": self.services["gateway_1"].pid, "gateway_2": second.pid}
        client = client_on_copy(
            self.args.port, second.pid, list(self.copies.values()), STARTUP_TIMEOUT
        )
        client.token = self.token
        serve_one_of_each(client, self.some_id)
        self.idle_mb["gateway_2"] = second.rss_mb()
        read_each(client, self.hot_ids)
        client.close()

    def measure_staleness(self):
        self.progress(f"staleness: {STALENESS_TRIALS} updates read through both copies")
        self.figures["staleness"] = measures.staleness(
            self.args.port, self.token, self.staleness_ids, self.copies
        )

    def connections_per_copy(self):
        owners = list(connection_owners(self.args.port, self.copies.values()).values())
        return {name: owners.count(pid) for name, pid in self.copies.items()}

    def measure_writes(self):
        """The lag first, on a quiet notification service; then the wrk burst,
        whose mails are waited for."""
        args = self.args
        self.progress(f"notification_lag: {args.lag_rate:g} articles/s for {args.lag_seconds:g} s")
        self.figures["notification_lag"] = measures.notification_lag(
            args.port, self.token, self.sink, args.lag_rate, args.lag_seconds
        )
        self.progress("write: POST /api/articles with wrk, then its mails")
        self.figures["write"] = measures.write_burst(
            self.wrk,
            f"{self.cached_url}/api/articles",
            self.token,
            self.articles,
            self.sink,
            args.write_seconds,
        )


def search_settings(config):
    """The search settings the articles service runs with (config.yml's)."""
    return SearchSettings(
        config.get("SEARCH_LANGUAGE") or DEFAULT_LANGUAGE,
        int(config.get("SEARCH_MAX_MATCHES") or DEFAULT_MAX_MATCHES),
    )


def check_reachable(config):
    reach_broker(config["AMQP_URI"], "make bench", timeout=5)
    reach_postgres(database_url(config, "articles"), config, "make bench", timeout=5)


def stack_environment(amqp_uri, db_urls, sink, port):
    """What every service (and this process's ``load_config``) reads."""
    return {
        "AMQP_URI": amqp_uri,
        **{f"{name.upper()}_DB_URL": url for name, url in db_urls.items()},
        "GATEWAY_PORT": str(port),
        "PUBLIC_BASE_URL": f"http://localhost:{port}",
        "SMTP_HOST": sink.host,
        "SMTP_PORT": str(sink.port),
        "SMTP_USER": "",
        "SMTP_PASSWORD": "",
        "SMTP_STARTTLS": "false",
        "LOG_LEVEL": "WARNING",
        # Stopping at the end should not take the production grace period.
        "SHUTDOWN_GRACE_SECONDS": "5",
        # Every feed client of the bench connects from this machine's one address.
        "FEED_MAX_CLIENTS_PER_ADDRESS": str(FEED_CLIENTS + FEED_WARMUP_CLIENTS + 1),
    }


def wait_healthy(services, port, timeout=STARTUP_TIMEOUT):
    deadline = time.monotonic() + timeout
    client = Client(port, timeout=5)
    while True:
        services.check_running()
        try:
            if client.get("/health").status == 200:
                client.close()
                return
        except (OSError, http.client.HTTPException):  # not listening yet
            client.close()
        if time.monotonic() > deadline:
            raise CannotRun(f"GET /health on port {port} is not 200 after {timeout} s")
        time.sleep(0.5)


def admin_token(services, port, config, timeout=STARTUP_TIMEOUT):
    """Log in as the seeded admin, whose credentials reach auth by event.

    Gently: five failures lock the account for 30 s, so at most one try a
    second, and a lock (429) is waited out.
    """
    client = Client(port)
    credentials = {"emailAddress": config["ADMIN_EMAIL"], "password": config["ADMIN_PASSWORD"]}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        services.check_running()
        response = client.request("POST", "/api/auth", credentials)
        if response.status == 200:
            client.close()
            return response.body["token"]
        retry_after = response.headers.get("Retry-After") if response.status == 429 else None
        time.sleep(max(1.0, float(retry_after or 0)))
    raise CannotRun(f"the admin {config['ADMIN_EMAIL']} could not log in within {timeout} s")


def serve_one_of_each(client, article_id):
    """One request of each kind the bench makes, before memory is taken as idle."""
    for path in ("/bench/ceiling", "/bench/echo", f"/api/articles/{article_id}", FIRST_PAGE):
        client.expect(200, "GET", path)
    client.expect(201, "POST", "/api/articles", measures.new_article("Idle"))


def read_each(client, article_ids):
    for article_id in article_ids:
        client.expect(200, "GET", f"/api/articles/{article_id}")


if __name__ == "__main__":
    sys.exit(main())
