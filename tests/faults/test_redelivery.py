"""Scenario 4: users events delivered twice and out of order, through the broker.

The events are the users service's own (read off the bus while auth is not
listening), then published to a running auth in a bad order, each twice:
an update before the add, the older update after the newer, an add after the
delete. Auth must end in the newest state.
"""

import pytest
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_waiter

from auth.models import ProcessedEvent
from auth.service import AuthService
from servicekit.errors import InvalidCredentials
from servicekit.tokens import verify_token
from tests.support import event_tap
from users.service import UsersService

from .conftest import count, new_user

pytestmark = pytest.mark.faults


def test_duplicated_and_reordered_events_end_in_the_newest_state(
    config, container_factory, db_session
):
    kept, gone = new_user(1), new_user(2)
    renamed = {"emailAddress": f"renamed-{kept['emailAddress']}", "role": "admin"}
    with event_tap(config, "users") as tap, ClusterRpcProxy(config, timeout=10) as n:
        container_factory(UsersService, config).start()
        user = n.users.create({**kept, "password": "first password"})
        n.users.update(user["id"], {**renamed, "password": "second password"})
        n.users.update(user["id"], {"password": "third password"})
        n.users.delete(n.users.create(gone)["id"])
        # Each user's events come in commit order; the seeded admin's anywhere.
        events = tap.take(6)
    added, updated, updated_again = [e for e in events if e[1]["data"]["id"] == user["id"]]
    gone_added, gone_deleted = [
        e for e in events if e[1]["data"]["emailAddress"] == gone["emailAddress"]
    ]

    auth = container_factory(AuthService, config)
    auth.start()
    dispatch = event_dispatcher(config)
    deliveries = [
        updated_again,
        updated,
        added,
        updated,
        added,
        updated_again,
        gone_deleted,
        gone_added,
        gone_deleted,
        gone_added,
    ]
    for event_type, payload in deliveries:
        with entrypoint_waiter(auth, f"on_{event_type}"):
            dispatch("users", event_type, payload)

    with ClusterRpcProxy(config, timeout=10) as n:
        token = n.auth.login(renamed["emailAddress"], "third password")["token"]
        refused = 0
        for email, password in [
            (renamed["emailAddress"], "second password"),
            (kept["emailAddress"], "first password"),
            (gone["emailAddress"], gone["password"]),
        ]:
            with pytest.raises(InvalidCredentials):
                n.auth.login(email, password)
            refused += 1
        revoked = n.auth.revocations()
    applied = count(db_session("auth"), ProcessedEvent)
    print(
        f"\n[duplicates, out of order] {len(deliveries)} deliveries of 5 users events "
        f"(update before add, older update last, add after delete); applied {applied}, "
        f"skipped {len(deliveries) - applied} duplicates; newest login works, "
        f"{refused} stale logins refused"
    )
    claims = verify_token(config["JWT_SECRET"], token)
    assert (claims["sub"], claims["email"], claims["role"]) == (
        user["id"],
        renamed["emailAddress"],
        "admin",
    )
    assert applied == 5
    assert revoked["deleted"] == [gone_deleted[1]["data"]["id"]]
