"""Scenarios: PostgreSQL restarts, or fails over to a standby, while
articles are being written.

``articles`` and ``notification`` run as ``nameko run`` processes on a
PostgreSQL server of the test's own (never the host's), while clients create
articles without pause. Each outage comes while a mail is in the SMTP
server's hands, so a notification worker holds its event's claim,
uncommitted: the outage terminates its connection ("terminating connection
due to administrator command") and the commit of its "sent" mark fails after
the mail went out.

1. Restarts: ``pg_ctl restart -m fast``, then a stop of a few seconds.
2. Failover: the services' URLs name a primary and its streaming standby
   (``host=a:port,b:port&target_session_attrs=read-write``); the primary
   stops, the standby is promoted, writes resume on it.

Afterwards every committed article has been mailed exactly once, every
create that was answered with its article is committed, and the writes that
failed meanwhile were told so (a 503, ``SERVICE_UNAVAILABLE``).
"""

import collections
import time

import eventlet
import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from articles.models import Article
from articles.models import OutboxMessage as ArticleOutbox
from gateway.errors import ERRORS
from notification.models import ProcessedEvent
from notification.service import NotificationService
from servicekit.config import database_key, database_url
from servicekit.db import make_engine
from tests.support import eventually
from tools.bootstrap import reach_postgres
from tools.migrations import migrate
from tools.topology import declare_event_queues

from .conftest import (
    DEADLINE,
    NamekoProcess,
    mails_per_article,
    new_article,
    queue_state,
    service_env,
)
from .postgres import PrivatePostgres

pytestmark = pytest.mark.faults

SERVICES = ("articles", "notification")
CLIENTS = 4
PAUSE_SECONDS = 0.02  # between one client's creates
SMTP_ANSWER_SECONDS = 0.1  # a mail stays this long in the SMTP server's hands
LOAD_SECONDS = 3.0  # of writes before, between and after the restarts
DOWN_SECONDS = 3.0  # the second restart: stopped this long
CALL_TIMEOUT = 10
NOTIFICATION_QUEUE = "evt-articles-article_added--notification.on_article_added"
MARK_RETRIED = "not stored: the database cannot be reached"
MARK_STORED = "stored after"


def outcome(exc):
    """``"503 SERVICE_UNAVAILABLE: <message>"``, as the gateway would answer it."""
    code = getattr(exc, "code", None)
    status = ERRORS[code].status if code in ERRORS else "-"
    message = str(getattr(exc, "message", None) or exc).split("\n")[0][:120]
    return f"{status} {code or type(exc).__name__}: {message}"


def several_servers(servers, database):
    """The URL of ``database`` on each of ``servers`` in turn, the primary
    wanted: the form of the operations guide."""
    hosts = ",".join(f"127.0.0.1:{server.port}" for server in servers)
    url = servers[0].url(database)
    return url.replace(f"127.0.0.1:{servers[0].port}/{database}", f"/{database}?host={hosts}") + (
        "&target_session_attrs=read-write"
    )


class Writers:
    """``CLIENTS`` green threads creating articles until :meth:`stop`."""

    def __init__(self, config):
        self.config = config
        self.answered = []  # the articles returned
        self.answered_at = []  # monotonic times of the answers
        self.failed = collections.Counter()  # outcome -> calls
        self.failed_at = []  # monotonic times of the failures
        self._stopping = False
        self._pool = eventlet.GreenPool(CLIENTS)
        self._numbers = iter(range(10**9))
        for _ in range(CLIENTS):
            self._pool.spawn_n(self._write)

    def _write(self):
        with ClusterRpcProxy(self.config, timeout=CALL_TIMEOUT) as n:
            while not self._stopping:
                try:
                    self.answered.append(n.articles.create(new_article(next(self._numbers))))
                    self.answered_at.append(time.monotonic())
                except Exception as exc:
                    self.failed[outcome(exc)] += 1
                    self.failed_at.append(time.monotonic())
                eventlet.sleep(PAUSE_SECONDS)

    def stop(self):
        self._stopping = True
        self._pool.waitall()


def restart_while_mailing(smtp_server, restart):
    """Run ``restart()`` once a mail is in the SMTP server's hands (its
    event's claim uncommitted); ``(seconds it took, its start, its end)``."""
    eventually(lambda: smtp_server.receiving, timeout=DEADLINE, interval=0.005)
    started = time.monotonic()
    seconds = restart()
    return seconds, started, time.monotonic()


class Services:
    """``articles`` and ``notification`` as ``nameko run`` processes on the
    databases of ``urls``, mailing to ``smtp_server``; ``outcome()`` once the
    writes stopped."""

    def __init__(self, config, urls, smtp_server, tmp_path):
        self.config = config
        self.smtp_server = smtp_server
        # The services get the URLs as written, and read them as every service does.
        run_config = {**config, "DB_URIS": {**config["DB_URIS"]}}
        run_config["DB_URIS"].update({database_key(name): url for name, url in urls.items()})
        self.urls = {name: database_url(run_config, name) for name in urls}
        declare_event_queues(run_config, [NotificationService])  # as bootstrap does
        env = {
            **service_env(run_config),
            "SMTP_HOST": smtp_server.host,
            "SMTP_PORT": str(smtp_server.port),
            "RETRY_DELAYS_SECONDS": "0.5,1,2,4,8,16",
        }
        smtp_server.answer_delay = SMTP_ANSWER_SECONDS
        self.processes = {
            name: NamekoProcess(f"{name}.service", env, tmp_path / f"{name}.log")
            for name in SERVICES
        }
        eventually(
            lambda: (
                queue_state(config, "rpc-articles")[1]
                and queue_state(config, NOTIFICATION_QUEUE)[1]
            ),
            timeout=DEADLINE,
        )

    def counted(self, name, model, *where):
        engine = make_engine(self.urls[name], poolclass=NullPool)
        try:
            with Session(engine) as session:
                return session.scalar(select(func.count()).select_from(model).where(*where))
        finally:
            engine.dispose()

    def settled(self):
        # A create whose RPC timed out may still come off the queue.
        if queue_state(self.config, "rpc-articles")[0]:
            return False
        committed = self.counted("articles", Article)
        unpublished = ArticleOutbox.published_at.is_(None)
        return (
            self.counted("articles", ArticleOutbox, unpublished) == 0
            and self.counted("notification", ProcessedEvent) == committed
            and len(self.smtp_server.messages) >= committed
        )

    def outcome(self):
        """Once every committed article was handled: ``(the committed
        articles' ids, each process's log)``."""
        eventually(self.settled, timeout=2 * DEADLINE, interval=0.2)
        time.sleep(2)  # room for a late duplicate to arrive
        engine = make_engine(self.urls["articles"], poolclass=NullPool)
        try:
            with Session(engine) as session:
                ids = [str(article_id) for article_id in session.scalars(select(Article.id))]
        finally:
            engine.dispose()
        return ids, {name: process.log() for name, process in self.processes.items()}

    def stop(self):
        for process in self.processes.values():
            process.stop()


def figures(title, writers, smtp_server, ids, logs, outages, extra=()):
    """Print what happened (and the ``extra`` lines); return ``(answered
    ids, mails per article, mark retries)``."""
    answered_ids = {article["id"] for article in writers.answered}
    per_article = mails_per_article(smtp_server, [{"id": article_id} for article_id in ids])
    message_ids = collections.Counter(m["Message-ID"].strip() for m in smtp_server.messages)
    marks_retried = logs["notification"].count(MARK_RETRIED)

    def failed_during(outage):  # and in the second after it
        return sum(outage[1] <= at <= outage[2] + 1 for at in writers.failed_at)

    lines = [
        f"\n[{title}] {len(ids)} articles committed, {len(writers.answered)} creates "
        f"answered with their article, {sum(writers.failed.values())} failed "
        f"({len(set(ids) - answered_ids)} of those committed all the same)"
    ]
    lines += [
        f"  {name}: {outage[2] - outage[1]:.2f} s, {failed_during(outage)} writes failed"
        for name, outage in outages.items()
    ]
    lines += [
        f"  failed writes by answer: {dict(writers.failed) or 'none'}",
        f"  mails {len(smtp_server.messages)}; mails per article: "
        f"{dict(sorted(collections.Counter(per_article).items()))}; "
        f"Message-IDs sent more than once: {sum(n > 1 for n in message_ids.values())}",
        f"  sent marks retried after the send: {marks_retried} retries, "
        f"{logs['notification'].count(MARK_STORED)} marks stored after retrying; "
        f"tracebacks in the logs: articles {logs['articles'].count('Traceback')}, "
        f"notification {logs['notification'].count('Traceback')}",
        *extra,
    ]
    print("\n".join(lines))
    return answered_ids, per_article, marks_retried


def test_postgres_restarts_under_write_load_mail_each_article_once(
    config, smtp_server, private_postgres, tmp_path
):
    pg = private_postgres
    urls = {name: pg.url(name) for name in SERVICES}
    for name, url in urls.items():
        migrate(name, url)
    services = Services(config, urls, smtp_server, tmp_path)
    try:
        writers = Writers(config)
        try:
            time.sleep(LOAD_SECONDS)
            fast = restart_while_mailing(smtp_server, pg.restart)
            time.sleep(LOAD_SECONDS)

            def stop_wait_start():
                pg.stop("fast")
                time.sleep(DOWN_SECONDS)
                return pg.start()

            slow = restart_while_mailing(smtp_server, stop_wait_start)
            time.sleep(LOAD_SECONDS)
        finally:
            writers.stop()
        ids, logs = services.outcome()
    finally:
        services.stop()

    answered_ids, per_article, marks_retried = figures(
        "database restart",
        writers,
        smtp_server,
        ids,
        logs,
        {
            "restart 1, pg_ctl restart -m fast": fast,
            f"restart 2, pg_ctl stop -m fast, {DOWN_SECONDS:g} s down, start": slow,
        },
    )
    assert answered_ids <= set(ids)  # nothing answered is lost
    assert per_article == [1] * len(ids)
    assert len(smtp_server.messages) == len(ids)
    # Each restart came while a mail was being sent: its mark was retried.
    assert marks_retried >= 1
    assert "Traceback" not in logs["notification"]


def test_a_promoted_standby_takes_the_writes_over(config, smtp_server, private_postgres, tmp_path):
    primary = private_postgres
    standby = PrivatePostgres()  # its port known, started below
    services = None
    try:
        urls = {name: several_servers([primary, standby], name) for name in SERVICES}
        for name in SERVICES:  # as make migrate does
            reach_postgres(urls[name], {}, "bootstrap", timeout=10)
            migrate(name, database_url({"DB_URIS": {database_key(name): urls[name]}}, name))
        primary.standby(standby)
        services = Services(config, urls, smtp_server, tmp_path)
        writers = Writers(config)
        try:
            time.sleep(LOAD_SECONDS)

            def fail_over():
                primary.stop("fast")
                # The bootstrap waits while the standby alone answers.
                promoter = eventlet.spawn_after(1.0, standby.promote)
                reach_postgres(urls["articles"], {}, "bootstrap", timeout=30)
                return promoter.wait()

            failover = restart_while_mailing(smtp_server, fail_over)
            time.sleep(LOAD_SECONDS)
        finally:
            writers.stop()
        ids, logs = services.outcome()
    finally:
        if services is not None:
            services.stop()
        standby.close()

    answered_after = sum(at > failover[2] for at in writers.answered_at)
    answered_ids, per_article, marks_retried = figures(
        "failover",
        writers,
        smtp_server,
        ids,
        logs,
        {"primary stopped (-m fast), standby promoted 1 s later": failover},
        [f"  creates answered after the promotion, by the promoted standby: {answered_after}"],
    )
    assert answered_after > 0  # the writes resumed, on the promoted standby
    assert answered_ids <= set(ids)
    assert per_article == [1] * len(ids)
    assert len(smtp_server.messages) == len(ids)
    assert marks_retried >= 1
    assert "Traceback" not in logs["notification"]
