"""Measures timed from Python: sequential list pages, the search against
reads, staleness across the gateway copies, the live feed's fan-out,
notification lag, the write burst, and memory."""

import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial

from . import load
from .client import Client
from .processes import connection_owners

WRITE_TAG = "bench-write"
FEED_TAG = "bench-feed"
POLL_PAUSE_SECONDS = 0.002


def percentiles(values_ms):
    if len(values_ms) < 2:  # too few to cut (a run that went wrong)
        only = values_ms[0] if values_ms else None
        return {"p50_ms": only, "p99_ms": only, "count": len(values_ms)}
    cuts = statistics.quantiles(values_ms, n=100, method="inclusive")
    return {"p50_ms": statistics.median(values_ms), "p99_ms": cuts[98], "count": len(values_ms)}


def new_article(title, tag="bench"):
    return {"title": title, "description": "A bench article.", "body": "Text.", "tags": [tag]}


def sequential(client, paths, count, warmup=5):
    """``count`` GETs of each path, one request at a time, the paths taking
    turns (drift hits them alike): p50 and p99 of each, in order."""
    times = {path: [] for path in paths}
    for _ in range(warmup):
        for path in paths:
            client.expect(200, "GET", path)
    for _ in range(count):
        for path in paths:
            start = time.perf_counter()
            client.expect(200, "GET", path)
            times[path].append((time.perf_counter() - start) * 1000)
    return [percentiles(times[path]) for path in paths]


def search_against_reads(client, search_path, read_paths, warmup=5):
    """The search ``search_path`` and a read of the next of ``read_paths``
    (each another article) in turn, one request at a time, so that drift
    hits them alike: p50 and p99 of each, and the search's last answer."""
    for path in read_paths[:warmup]:
        client.expect(200, "GET", search_path)
        client.expect(200, "GET", path)
    searches, reads = [], []
    for path in read_paths[warmup:]:
        start = time.perf_counter()
        found = client.expect(200, "GET", search_path)
        searches.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        client.expect(200, "GET", path)
        reads.append((time.perf_counter() - start) * 1000)
    return percentiles(searches), percentiles(reads), found


def staleness(port, token, article_ids, copies, connections=16, timeout=10.0):
    """A trial per article: read it on every connection (each copy caches
    it), PUT it through one, then poll every connection until each serves
    the new ``updatedDate``. The trial's staleness runs from the PUT's answer
    to the sending of the request that first got the new version on the
    slowest connection (a request's own latency is not staleness).

    ``copies``: name -> pid of the gateway copies sharing ``port``; the kernel
    spreads the kept connections over them, and we report how.
    """
    clients = [Client(port, token) for _ in range(connections)]
    names = {pid: name for name, pid in copies.items()}
    with ThreadPoolExecutor(connections) as pool:
        for client in clients:
            client.expect(200, "GET", "/health")
        owners = connection_owners(port, list(copies.values()))
        split = Counter(names.get(owners.get(client.local_port), "unknown") for client in clients)
        delays = []
        timed_out = 0
        for trial, article_id in enumerate(article_ids):
            path = f"/api/articles/{article_id}"
            list(pool.map(partial(_read, path=path), clients))
            written = clients[0].expect(200, "PUT", path, {"title": f"Staleness trial {trial}"})
            answered = time.perf_counter()
            poll = partial(
                _first_new_version,
                path=path,
                version=written["updatedDate"],
                deadline=answered + timeout,
            )
            seen = list(pool.map(poll, clients))
            if None in seen:
                timed_out += 1
                delays.append(timeout * 1000)
            else:
                delays.append(max(0.0, max(seen) - answered) * 1000)
    reconnects = sum(client.reconnects for client in clients)
    for client in clients:
        client.close()
    return {
        **percentiles(delays),
        "trials": len(delays),
        "timed_out": timed_out,
        "connections_per_copy": dict(split),
        "reconnects": reconnects,
    }


def _read(client, path):
    return client.expect(200, "GET", path)


def _first_new_version(client, path, version, deadline):
    """When the first request that got ``version`` was sent (``None``: not by ``deadline``)."""
    while True:
        sent = time.perf_counter()
        if client.expect(200, "GET", path)["updatedDate"] == version:
            return sent
        if sent > deadline:
            return None
        time.sleep(POLL_PAUSE_SECONDS)


def feed_fan_out(poster, idle, dedicated, changes, pause, timeout=10.0):
    """``changes`` articles posted through ``poster``, ``pause`` s apart, each
    waited for at every feed client (``feed.FeedClient``) that is connected.

    Returns two lists of delays in ms: for each (idle client, change), from
    the article's commit to its message at the client; for each change,
    from the moment the POST's answer was read to its message at
    ``dedicated``. A message that never came counts as the whole wait, from
    its start. Also how many never came.
    """
    from_commit, from_answer, missing = [], [], 0
    receivers = [*idle, dedicated]
    for n in range(changes):
        started = time.monotonic()
        article = poster.expect(201, "POST", "/api/articles", new_article(f"Feed {n}", FEED_TAG))
        answered = time.time()
        # createdDate is stamped in the article's transaction, a hair before
        # its commit: the nearest to the commit the API tells.
        committed = datetime.fromisoformat(article["createdDate"]).timestamp()
        article_id = article["id"]

        def delivered(article_id=article_id):
            return all(article_id in c.received or not c.open for c in receivers)

        _wait(delivered, timeout)
        for client in idle:
            at = client.received.get(article_id)
            missing += at is None
            from_commit.append(timeout * 1000 if at is None else (at - committed) * 1000)
        at = dedicated.received.get(article_id)
        missing += at is None
        from_answer.append(timeout * 1000 if at is None else (at - answered) * 1000)
        time.sleep(max(0.0, started + pause - time.monotonic()))
    return from_commit, from_answer, missing


def _wait(done, timeout, pause=0.01):
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(pause)


def notification_lag(port, token, sink, rate, seconds, workers=8, timeout=60.0):
    """Articles posted at a steady ``rate`` for ``seconds``, paced from here
    over a few connections (a slow answer does not hold back the next post);
    each one's lag runs from its ``createdDate`` to its mail at the sink."""
    count = round(rate * seconds)
    start = time.monotonic() + 0.2
    created = {}  # article id -> createdDate, epoch seconds

    def post_share(worker):
        client = Client(port, token)
        for n in range(worker, count, workers):
            time.sleep(max(0.0, start + n / rate - time.monotonic()))
            article = client.expect(201, "POST", "/api/articles", new_article(f"Lag {n}"))
            created[article["id"]] = datetime.fromisoformat(article["createdDate"]).timestamp()
        client.close()

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(post_share, range(workers)))
    posting_seconds = time.monotonic() - start
    missing = sink.wait_for(list(created), timeout)
    # A mail that never came counts as the whole wait: the p99 must not hide it.
    lags = [(sink.arrivals.get(i, time.time()) - at) * 1000 for i, at in created.items()]
    return {
        **percentiles(lags),
        "articles": count,
        "rate_per_s": count / posting_seconds,
        "missing_mails": len(missing),
    }


def write_burst(wrk, url, token, articles, sink, seconds, timeout=120.0):
    """``POST /api/articles`` with wrk, then wait until every article it
    made has its mail, so the burst does not spill into what comes next."""
    figure = load.run(wrk, url, "post.lua", (token, WRITE_TAG), seconds=seconds)
    written = articles.ids_tagged(WRITE_TAG)
    started = time.monotonic()
    missing = sink.wait_for(written, timeout)
    return {
        **figure,
        "articles": len(written),
        "mails_drained_s": time.monotonic() - started,
        "missing_mails": len(missing),
    }


def memory(idle_mb, after_mb):
    """Resident memory of each process, idle and at the end, and the largest growth."""
    processes = {
        name: {"idle_mb": idle_mb[name], "after_mb": after_mb[name]}
        for name in idle_mb
        if name in after_mb
    }
    for numbers in processes.values():
        numbers["ratio"] = numbers["after_mb"] / numbers["idle_mb"]
    return {
        "processes": processes,
        "max_ratio": max(numbers["ratio"] for numbers in processes.values()),
    }
