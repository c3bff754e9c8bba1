"""Tokens end with a password change, a role change or a deletion, in every
gateway copy, whatever the user's role is later; a token issued after the
change works. Two gateway copies: the stack's, and one more of its own."""

import pytest
import requests

from gateway.authentication import STALE_GENERATION
from gateway.service import GatewayService
from tests.conftest import bearer, login
from tests.support import eventually, free_port


@pytest.fixture
def start_gateway(stack, container_factory):
    """``start_gateway()``: one more gateway copy on the stack; its URL."""

    def start():
        address = f"127.0.0.1:{free_port()}"
        container_factory(GatewayService, {**stack, "WEB_SERVER_ADDRESS": address}).start()
        return f"http://{address}"

    return start


def own_update(gateway_url, user_id, token):
    """A route that needs the token: the user changes its own description."""
    path = f"{gateway_url}/api/users/{user_id}"
    return requests.put(path, json={"description": "still me"}, headers=bearer(token), timeout=5)


def refused_as_stale(gateway_url, user_id, token):
    response = own_update(gateway_url, user_id, token)
    return response.status_code == 401 and response.json()["message"] == STALE_GENERATION


def email_of(web_session, user, token):
    return web_session.get(f"/api/users/{user['id']}", headers=bearer(token)).json()["emailAddress"]


def test_a_token_from_before_a_password_change_is_refused_by_every_gateway_copy(
    web_session, gateway_url, start_gateway, make_user, wait_for_credentials
):
    other_gateway = start_gateway()
    user, old_token = make_user(password="first password")
    email = email_of(web_session, user, old_token)
    eventually(lambda: own_update(other_gateway, user["id"], old_token).status_code == 200)

    changed = web_session.put(
        f"/api/users/{user['id']}", json={"password": "second password"}, headers=bearer(old_token)
    )
    assert changed.status_code == 200, changed.text

    for copy in (gateway_url, other_gateway):
        eventually(lambda copy=copy: refused_as_stale(copy, user["id"], old_token), timeout=2)
    # A token issued after the change works everywhere.
    wait_for_credentials(email, lambda credential: credential.token_generation >= 1)
    new_token = login(web_session, email, "second password").json()["token"]
    for copy in (gateway_url, other_gateway):
        assert own_update(copy, user["id"], new_token).status_code == 200


def test_a_token_from_before_a_role_change_is_refused_even_after_the_role_is_given_back(
    web_session, gateway_url, admin_token, start_gateway, make_user, wait_for_credentials
):
    user, old_token = make_user(password="the password")
    email = email_of(web_session, user, old_token)
    path = f"/api/users/{user['id']}"
    for role in ("admin", "regular"):
        response = web_session.put(path, json={"role": role}, headers=bearer(admin_token))
        assert response.status_code == 200, response.text
    wait_for_credentials(email, lambda credential: credential.token_generation >= 2)

    # A copy started after the changes learns them from auth, not from events.
    later_gateway = start_gateway()
    for copy in (gateway_url, later_gateway):
        # (503 until the new copy has loaded the revocations.)
        eventually(lambda copy=copy: refused_as_stale(copy, user["id"], old_token), timeout=5)
    new_token = login(web_session, email, "the password").json()["token"]
    for copy in (gateway_url, later_gateway):
        assert own_update(copy, user["id"], new_token).status_code == 200


def test_a_deleted_users_token_is_refused_by_every_gateway_copy(
    web_session, gateway_url, admin_token, start_gateway, make_user
):
    other_gateway = start_gateway()
    user, token = make_user()
    eventually(lambda: own_update(other_gateway, user["id"], token).status_code == 200)
    response = web_session.delete(f"/api/users/{user['id']}", headers=bearer(admin_token))
    assert response.status_code == 200

    def refused_as_deleted(copy):
        response = own_update(copy, user["id"], token)
        return response.status_code == 401 and "no longer exists" in response.json()["message"]

    for copy in (gateway_url, other_gateway):
        eventually(lambda copy=copy: refused_as_deleted(copy), timeout=2)
