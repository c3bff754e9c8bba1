"""Scenario 2: auth and notification are stopped while users and articles are
created; once they are started again, nothing was missed, nothing doubled."""

import time

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from articles.service import ArticlesService
from auth.models import Credential
from auth.service import AuthService
from notification.service import NotificationService
from tests.support import eventually
from tools.topology import declare_event_queues, event_queues
from users.service import UsersService

from .conftest import (
    DEADLINE,
    PASSWORD,
    count,
    mails_per_article,
    new_article,
    new_user,
    queue_state,
)

pytestmark = pytest.mark.faults

USERS = 20
ARTICLES = 10
SUBSCRIBERS = (AuthService, NotificationService)


def test_events_wait_for_stopped_subscribers(
    notification_config, container_factory, smtp_server, db_session
):
    config = notification_config
    declare_event_queues(config, SUBSCRIBERS)  # as bootstrap does
    queues = [queue.name for cls in SUBSCRIBERS for queue in event_queues(cls, config)]

    def waiting_events():
        return sum(queue_state(config, name)[0] for name in queues)

    for cls in (UsersService, ArticlesService):
        container_factory(cls, config).start()
    subscribers = [container_factory(cls, config) for cls in SUBSCRIBERS]
    for container in subscribers:
        container.start()
    auth_db = db_session("auth")
    eventually(lambda: count(auth_db, Credential) == 1, timeout=10)  # the admin
    for container in subscribers:
        container.stop()

    with ClusterRpcProxy(config, timeout=10) as n:
        users = [n.users.create(new_user(i)) for i in range(USERS)]
        articles = [n.articles.create(new_article(i)) for i in range(ARTICLES)]
    eventually(lambda: waiting_events() == USERS + ARTICLES, timeout=DEADLINE)
    waited = waiting_events()
    assert count(auth_db, Credential) == 1 and smtp_server.messages == []

    started = time.monotonic()
    for cls in SUBSCRIBERS:
        container_factory(cls, config).start()
    eventually(
        lambda: count(auth_db, Credential) == USERS + 1 and len(smtp_server.messages) >= ARTICLES,
        timeout=DEADLINE,
    )
    caught_up_after = time.monotonic() - started
    time.sleep(1)  # a duplicate would show up meanwhile

    with ClusterRpcProxy(config, timeout=10) as n:
        logins = sum(n.auth.login(user["emailAddress"], PASSWORD)["auth"] for user in users)
    print(
        f"\n[subscribers down] {USERS} users + {ARTICLES} articles created with auth and "
        f"notification stopped; {waited} events waited in their queues; all handled "
        f"{caught_up_after:.2f} s after the subscribers started; logins {logins}/{USERS}; "
        f"emails {len(smtp_server.messages)}/{ARTICLES}"
    )
    assert logins == USERS
    assert len(smtp_server.messages) == ARTICLES
    assert waiting_events() == 0
    assert mails_per_article(smtp_server, articles) == [1] * ARTICLES
