"""Scenario 5: a handler that keeps failing is retried, parked in the
dead-letter queue, and replayed from ``nameko shell`` once the cause is fixed.

The handler is notification's ``article_added`` with the SMTP server down.
"""

import json
import time

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from articles.service import ArticlesService
from notification.service import NotificationService
from servicekit.retry import parse_delays
from tests.support import eventually
from tools.topology import declare_event_queues, event_queues

from .conftest import DEADLINE, mails_per_article, nameko_shell, new_article, queue_state

pytestmark = pytest.mark.faults

OPERATOR = """\
import json
print("PARKED", json.dumps(n.rpc.notification.dead_letters_list()))
print("REPLAYED", n.rpc.notification.dead_letters_replay())
"""


def printed(output, label):
    """The JSON value the shell printed after ``label`` (behind its ``>>>`` prompts)."""
    [value] = [
        line.partition(f"{label} ")[2] for line in output.splitlines() if f"{label} " in line
    ]
    return json.loads(value)


def test_failing_handler_is_parked_then_replayed_from_the_shell(
    notification_config, container_factory, smtp_server
):
    config = notification_config
    tries = len(parse_delays(config["RETRY_DELAYS_SECONDS"])) + 1
    declare_event_queues(config, [NotificationService])
    dead_queue = event_queues(NotificationService, config)[0].name + ".dead"
    smtp_server.stop()  # every try fails until it is back
    for cls in (ArticlesService, NotificationService):
        container_factory(cls, config).start()

    started = time.monotonic()
    with ClusterRpcProxy(config, timeout=10) as n:
        article = n.articles.create(new_article(1))
    eventually(lambda: queue_state(config, dead_queue)[0] == 1, timeout=DEADLINE)
    parked_after = time.monotonic() - started

    smtp_server.start()  # the fix
    operator_started = time.monotonic()
    output = nameko_shell(config, OPERATOR)
    eventually(lambda: smtp_server.messages, timeout=DEADLINE)
    mailed_after = time.monotonic() - operator_started
    time.sleep(1)  # a second mail would show up meanwhile

    [parked] = printed(output, "PARKED")
    print(
        f"\n[dead letters] article_added failed {parked['attempts']} times "
        f"(delays {config['RETRY_DELAYS_SECONDS']} s) and was parked {parked_after:.2f} s "
        f"after the create ({parked['lastError'][:60]}...); replayed "
        f"{printed(output, 'REPLAYED')} from nameko shell once SMTP was back; mailed "
        f"{mailed_after:.2f} s after the shell started (its start-up included); emails {len(smtp_server.messages)}"
    )
    assert parked["attempts"] == tries
    assert parked["eventType"] == "article_added"
    assert printed(output, "REPLAYED") == 1
    assert mails_per_article(smtp_server, [article]) == [1]
    assert len(smtp_server.messages) == 1
    assert queue_state(config, dead_queue)[0] == 0
