"""Identity through the gateway: users, login, tokens, errors (CONTRACT §3)."""

from tests.conftest import bearer, eventually, login


def test_health_reports_every_service(stack, web_session):
    response = web_session.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["services"] == {
        name: "ok" for name in ("articles", "events", "users", "auth", "notification")
    }


def test_admin_creates_user_who_logs_in(web_session, admin_token):
    body = {
        "firstName": "New",
        "lastName": "User",
        "emailAddress": "new.user@example.com",
        "description": "New User",
        "password": "Testing0*",
    }
    response = web_session.post("/api/users", json=body, headers=bearer(admin_token))
    assert response.status_code == 201, response.text
    user = response.json()
    assert response.headers["Location"] == f"/api/users/{user['id']}"
    assert "password" not in user
    login_response = eventually(
        lambda: (r := login(web_session, "new.user@example.com", "Testing0*")).ok and r, timeout=1
    )
    assert login_response.json()["auth"] is True
    assert login_response.json()["expiresIn"] == 86400
