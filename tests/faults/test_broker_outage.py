"""Scenario 1: RabbitMQ is unreachable while users and articles are created.

Every service reaches the broker through a proxy. With the line cut, the
creates run in their containers (``entrypoint_hook`` needs no broker), so
they commit and their outbox rows wait. Once the line is back, every event
must arrive and take effect exactly once: each user can log in, each article
sends one email.
"""

import contextlib
import time

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_hook

from articles.models import OutboxMessage as ArticleOutbox
from articles.service import ArticlesService
from auth.models import Credential
from auth.models import ProcessedEvent as AuthProcessed
from auth.service import AuthService
from notification.models import ProcessedEvent as NotificationProcessed
from notification.service import NotificationService
from tests.support import event_tap, eventually
from tools.topology import declare_event_queues
from users.models import OutboxMessage as UserOutbox
from users.service import UsersService

from .conftest import DEADLINE, PASSWORD, count, mails_per_article, new_article, new_user

pytestmark = pytest.mark.faults

USERS = 20
ARTICLES = 10
SWEEPS = 3  # seconds the outage lasts after the creates: the sweeper fails a few rounds


def call(container, method, *args):
    with entrypoint_hook(container, method) as hook:
        return hook(*args)


def drain(tap, quiet=1.0):
    """Every event the tap gets until none arrives for ``quiet`` seconds."""
    events = []
    with contextlib.suppress(AssertionError):
        while True:
            events += tap.take(1, timeout=quiet)
    return events


def test_changes_committed_while_the_broker_is_down_are_announced_once(
    config, broker_proxy, notification_config, container_factory, smtp_server, db_session
):
    behind_proxy = {**notification_config, "AMQP_URI": broker_proxy.url(config["AMQP_URI"])}
    declare_event_queues(config, [AuthService, NotificationService])  # as bootstrap does
    services = (UsersService, ArticlesService, AuthService, NotificationService)
    containers = {cls.name: container_factory(cls, behind_proxy) for cls in services}
    for container in containers.values():
        container.start()
    auth_db, users_db, articles_db = (db_session(name) for name in ("auth", "users", "articles"))

    def unpublished():
        return count(users_db, UserOutbox, UserOutbox.published_at.is_(None)) + count(
            articles_db, ArticleOutbox, ArticleOutbox.published_at.is_(None)
        )

    # The admin seeded at start-up is announced before the outage begins.
    eventually(lambda: count(auth_db, Credential) == 1, timeout=10)

    with event_tap(config, "users") as users_tap, event_tap(config, "articles") as articles_tap:
        broker_proxy.cut()
        cut_at = time.monotonic()
        try:
            users = [call(containers["users"], "create", new_user(n)) for n in range(USERS)]
            articles = [
                call(containers["articles"], "create", new_article(n)) for n in range(ARTICLES)
            ]
            time.sleep(SWEEPS)
            waiting = unpublished()
        finally:
            broker_proxy.restore()
        restored = time.monotonic()

        eventually(lambda: unpublished() == 0, timeout=DEADLINE)
        published_after = time.monotonic() - restored
        eventually(
            lambda: (
                count(auth_db, Credential) == USERS + 1 and len(smtp_server.messages) >= ARTICLES
            ),
            timeout=DEADLINE,
        )
        recovered_after = time.monotonic() - restored
        published = drain(users_tap) + drain(articles_tap)  # also waits for late duplicates

    with ServiceRpcProxy("auth", config, timeout=10) as auth:
        logins = sum(auth.login(user["emailAddress"], PASSWORD)["auth"] for user in users)
    print(
        f"\n[broker outage] {USERS} users + {ARTICLES} articles committed with the broker cut "
        f"(outage {restored - cut_at:.1f} s, {broker_proxy.refused} connections refused); "
        f"{waiting} events waited in the outboxes; after the broker came back: all published "
        f"in {published_after:.2f} s, all handled in {recovered_after:.2f} s; "
        f"events on the bus {len(published)} "
        f"({len({p['eventId'] for _, p in published})} distinct); "
        f"logins {logins}/{USERS}; emails {len(smtp_server.messages)}/{ARTICLES}"
    )
    assert waiting == USERS + ARTICLES
    assert logins == USERS
    assert len(smtp_server.messages) == ARTICLES
    assert count(auth_db, AuthProcessed) == USERS + 1  # the admin's event too
    assert count(db_session("notification"), NotificationProcessed) == ARTICLES
    assert mails_per_article(smtp_server, articles) == [1] * ARTICLES
    assert {p["data"]["id"] for _, p in published} == {x["id"] for x in users + articles}
