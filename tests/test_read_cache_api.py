"""The read cache with every service running: changes made behind the
gateway's back (straight over RPC, as an operator would) reach its cache
through the events alone."""

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from tests.support import eventually
from tests.test_content_api import ARTICLE, EVENT


@pytest.fixture
def cluster(stack):
    with ClusterRpcProxy(stack) as proxy:
        yield proxy


def served(web_session, path):
    response = web_session.get(path)
    return response.status_code, response.json()


@pytest.mark.parametrize("plural, body", [("articles", ARTICLE), ("events", EVENT)])
def test_every_change_over_rpc_reaches_the_gateways_cache(web_session, cluster, plural, body):
    service = getattr(cluster, plural)
    first = service.create({**body, "authorUID": "operator"})
    path = f"/api/{plural}/{first['id']}"
    assert served(web_session, path) == (200, first)
    # Cached once the create's own event has been heard (it drops the item).
    eventually(lambda: web_session.get(path).headers["X-Cache"] == "hit", timeout=1)
    assert served(web_session, f"/api/{plural}")[1] == [first]

    second = service.create({**body, "authorUID": "operator", "title": "Second"})  # *_added
    eventually(lambda: served(web_session, f"/api/{plural}")[1] == [second, first], timeout=1)

    changed = service.update(first["id"], {"title": "Changed"})  # *_updated
    eventually(lambda: served(web_session, path) == (200, changed), timeout=1)
    eventually(lambda: served(web_session, f"/api/{plural}")[1] == [second, changed], timeout=1)

    service.delete(first["id"])  # *_deleted
    eventually(lambda: served(web_session, path)[0] == 404, timeout=1)
    eventually(lambda: served(web_session, f"/api/{plural}")[1] == [second], timeout=1)


def test_user_changes_over_rpc_reach_the_gateways_cache(web_session, cluster, admin_token):
    user = cluster.users.create(
        {
            "firstName": "Ada",
            "lastName": "L",
            "emailAddress": "ada@x.org",
            "password": "long enough",
        }
    )
    path = f"/api/users/{user['id']}"
    public = {key: value for key, value in user.items() if key != "emailAddress"}
    assert served(web_session, path) == (200, public)

    cluster.users.update(user["id"], {"firstName": "Grace"})
    eventually(lambda: served(web_session, path)[1]["firstName"] == "Grace", timeout=1)
    cluster.users.delete(user["id"])
    eventually(lambda: served(web_session, path)[0] == 404, timeout=1)
