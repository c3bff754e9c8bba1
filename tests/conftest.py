"""End-to-end fixtures: every service running, HTTP through the gateway."""

import time

import pytest
from sqlalchemy import func, select

from auth.models import Credential
from gateway.service import GatewayService
from tests.support import eventually
from tools import SERVICE_NAMES
from tools.topology import declare_event_queues, service_classes

ALL_SERVICES = (
    GatewayService,
    *(cls for name in SERVICE_NAMES for cls in service_classes(f"{name}.service")),
)


@pytest.fixture
def stack(config, runner_factory, web_session):
    """The whole backend in this process, on the real broker and databases."""
    declare_event_queues(config, ALL_SERVICES)  # as the bootstrap step does
    runner = runner_factory(config, *ALL_SERVICES)
    runner.start()
    eventually(lambda: web_session.get("/health").status_code == 200)
    return config


def login(web_session, email, password):
    response = web_session.post("/api/auth", json={"emailAddress": email, "password": password})
    return response


@pytest.fixture
def wait_for_credentials(db_session):
    """Wait until auth holds a login for ``email`` (and ``check`` holds).

    Polling the auth database, not the login route: failed logins count
    towards throttling.
    """
    auth_db = db_session("auth")

    def wait(email, check=lambda credential: True, timeout=5.0):
        def arrived():
            auth_db.rollback()  # a fresh snapshot each time
            credential = auth_db.scalar(
                select(Credential).where(func.lower(Credential.email) == email.lower())
            )
            return credential is not None and check(credential)

        eventually(arrived, timeout)

    return wait


@pytest.fixture
def admin_token(stack, web_session, wait_for_credentials):
    """A token of the seeded admin (its credentials arrive by event)."""
    wait_for_credentials(stack["ADMIN_EMAIL"])
    response = login(web_session, stack["ADMIN_EMAIL"], stack["ADMIN_PASSWORD"])
    assert response.ok, response.text
    return response.json()["token"]


@pytest.fixture
def make_user(web_session, admin_token, wait_for_credentials):
    """``make_user(role="regular")``: a user who can log in; returns (user, token)."""
    counter = iter(range(1_000_000))

    def make(role="regular", password="long enough 1"):
        n = next(counter)
        body = {
            "firstName": f"User{n}",
            "lastName": "Test",
            "emailAddress": f"user{n}-{time.monotonic_ns()}@example.com",
            "password": password,
            "role": role,
        }
        response = web_session.post(
            "/api/users", json=body, headers={"Authorization": f"Bearer {admin_token}"}
        )
        assert response.status_code == 201, response.text
        user = response.json()
        token = eventually(
            lambda: (
                (r := login(web_session, body["emailAddress"], password)).ok and r.json()["token"]
            )
        )
        return user, token

    return make


def bearer(token):
    return {"Authorization": f"Bearer {token}"}
