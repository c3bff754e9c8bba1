"""Access rules of the users routes, unit level (no broker: RPC is mocked)."""

from unittest.mock import Mock

import pytest
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.authentication import Caller
from gateway.service import GatewayService
from servicekit.errors import Forbidden

USER = {"id": "u1", "firstName": "A", "emailAddress": "a@example.com", "role": "regular"}


def request(method="GET", body=None):
    return Request(EnvironBuilder(method=method, json=body).get_environ())


@pytest.fixture
def gateway():
    service = worker_factory(GatewayService)
    for method in ("get", "create", "update"):
        getattr(service.users_rpc, method).return_value = USER
    return service


def as_caller(service, user_id, role):
    service.auth.caller = Mock(return_value=Caller(user_id, role, None))


@pytest.mark.parametrize(
    "user_id, role, shown",
    [(None, None, False), ("u2", "regular", False), ("u1", "regular", True), ("u2", "admin", True)],
)
def test_email_shown_only_to_admin_or_self(gateway, user_id, role, shown):
    gateway.auth.caller = Mock(return_value=Caller(user_id, role, None) if user_id else None)
    response = gateway.get_user(request(), "u1")
    assert ('"emailAddress"' in response.get_data(as_text=True)) is shown


def test_regular_user_cannot_change_another_user(gateway):
    as_caller(gateway, "u2", "regular")
    with pytest.raises(Forbidden):
        gateway.update_user(request("PUT", {"firstName": "B"}), "u1")
    gateway.users_rpc.update.assert_not_called()


def test_regular_user_cannot_change_its_role(gateway):
    as_caller(gateway, "u1", "regular")
    with pytest.raises(Forbidden):
        gateway.update_user(request("PUT", {"role": "admin"}), "u1")


def test_user_updates_itself_and_admin_updates_anyone(gateway):
    as_caller(gateway, "u1", "regular")
    assert gateway.update_user(request("PUT", {"firstName": "B"}), "u1").status_code == 200
    as_caller(gateway, "u9", "admin")
    assert gateway.update_user(request("PUT", {"role": "admin"}), "u1").status_code == 200
    (user_id, body), kwargs = gateway.users_rpc.update.call_args
    assert (user_id, body) == ("u1", {"role": "admin"})
    (_, caller, _), _ = gateway.request_keys.of.call_args  # the key is the admin's
    assert kwargs["request_key"] is gateway.request_keys.of.return_value and caller.user_id == "u9"


def test_create_answers_201_with_location(gateway):
    response = gateway.create_user(request("POST", {"firstName": "A"}))
    gateway.auth.admin.assert_called_once()
    assert response.status_code == 201
    assert response.headers["Location"] == "/api/users/u1"
