"""Identity through the gateway: users, login, tokens, errors."""

from datetime import datetime

from tests.conftest import bearer, login
from tests.support import eventually


def token_refused(web_session, user_id, token):
    """The gateway refuses ``token`` on a protected route (the user's own update)."""
    response = web_session.put(
        f"/api/users/{user_id}", json={"description": "x"}, headers=bearer(token)
    )
    return response.status_code == 401


def test_health_reports_every_service(stack, web_session):
    response = web_session.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["services"] == {
        name: "ok" for name in ("articles", "events", "users", "auth", "notification")
    }


def test_admin_creates_user_who_logs_in_within_a_second(
    web_session, admin_token, wait_for_credentials
):
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
    wait_for_credentials("new.user@example.com", timeout=1)
    login_response = login(web_session, "new.user@example.com", "Testing0*")
    assert login_response.status_code == 200
    assert login_response.json()["auth"] is True
    assert login_response.json()["expiresIn"] == 86400


def test_user_lifecycle_password_change_and_delete(
    web_session, admin_token, make_user, wait_for_credentials
):
    user, token = make_user(password="first password")
    email = web_session.get(f"/api/users/{user['id']}", headers=bearer(token)).json()[
        "emailAddress"
    ]

    # The user changes its own password: only the new one works, quickly.
    response = web_session.put(
        f"/api/users/{user['id']}", json={"password": "second password"}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    changed_at = datetime.fromisoformat(response.json()["updatedDate"])
    wait_for_credentials(email, lambda credential: credential.version >= changed_at, timeout=1)
    assert login(web_session, email, "first password").status_code == 401
    new_login = login(web_session, email, "second password")
    assert new_login.status_code == 200
    # The password change ended the tokens issued before it; the new one works.
    eventually(lambda: token_refused(web_session, user["id"], token), timeout=1)
    new_token = new_login.json()["token"]
    assert not token_refused(web_session, user["id"], new_token)

    # Deleted: its login and its token are refused within the second.
    response = web_session.delete(f"/api/users/{user['id']}", headers=bearer(admin_token))
    assert response.status_code == 200
    assert response.json()["id"] == user["id"]
    wait_for_credentials(email, lambda credential: credential.deleted_at is not None, timeout=1)
    assert login(web_session, email, "second password").status_code == 401
    eventually(lambda: token_refused(web_session, user["id"], new_token), timeout=1)


def test_email_is_private_to_admin_and_self(web_session, admin_token, make_user):
    user, token = make_user()
    _, other_token = make_user()
    path = f"/api/users/{user['id']}"
    assert "emailAddress" not in web_session.get(path).json()
    assert "emailAddress" not in web_session.get(path, headers=bearer(other_token)).json()
    assert "emailAddress" in web_session.get(path, headers=bearer(token)).json()
    assert "emailAddress" in web_session.get(path, headers=bearer(admin_token)).json()
    listed = web_session.get("/api/users", params={"limit": 100}).json()
    assert all("emailAddress" not in u for u in listed)


def test_access_rules_for_user_writes(web_session, admin_token, make_user):
    user, token = make_user()
    other, _ = make_user()
    new_user = {
        "firstName": "A",
        "lastName": "B",
        "emailAddress": "ab@example.com",
        "password": "long enough",
    }
    cases = [
        ("post", "/api/users", token, new_user, 403),
        ("post", "/api/users", None, new_user, 401),
        ("put", f"/api/users/{other['id']}", token, {"firstName": "X"}, 403),
        ("put", f"/api/users/{user['id']}", token, {"role": "admin"}, 403),
        ("delete", f"/api/users/{other['id']}", token, None, 403),
    ]
    for method, path, auth, body, status in cases:
        headers = bearer(auth) if auth else {}
        response = getattr(web_session, method)(path, json=body, headers=headers)
        assert response.status_code == status, (method, path, response.text)
        assert response.json()["error"] in ("FORBIDDEN", "UNAUTHORIZED")

    promoted = web_session.put(
        f"/api/users/{user['id']}", json={"role": "admin"}, headers=bearer(admin_token)
    )
    assert promoted.json()["role"] == "admin"
    # A role change ends the user's tokens: refused once the gateway hears of it.
    eventually(lambda: token_refused(web_session, user["id"], token), timeout=1)


def test_list_users_pages_with_link_header(web_session, admin_token):
    for n in range(5):
        body = {
            "firstName": "P",
            "lastName": str(n),
            "emailAddress": f"page{n}@example.com",
            "password": "long enough",
        }
        assert web_session.post("/api/users", json=body, headers=bearer(admin_token)).ok
    seen, url, pages = [], "/api/users?limit=2", 0
    while url:
        response = web_session.get(url)
        assert response.status_code == 200
        seen += [u["id"] for u in response.json()]
        pages += 1
        link = response.links.get("next", {}).get("url")
        url = link.split(response.url.split("/api/")[0], 1)[-1] if link else None
    assert pages == 3  # 6 users (5 + the admin), 2 a page
    assert len(seen) == len(set(seen)) == 6


def test_login_errors(web_session, stack):
    wrong = login(web_session, stack["ADMIN_EMAIL"], "wrong password")
    unknown = login(web_session, "nobody@example.com", "wrong password")
    for response in (wrong, unknown):
        assert response.status_code == 401
        body = response.json()
        assert body["auth"] is False and body["token"] is None
        assert body["error"] == "INVALID_CREDENTIALS"
    missing = web_session.post("/api/auth", json={"emailAddress": "x@example.com"})
    assert missing.status_code == 422
    assert "password" in missing.json()["details"]


def test_repeated_failed_logins_from_one_address_are_throttled(web_session, stack):
    statuses = [login(web_session, "victim@example.com", "guess").status_code for _ in range(6)]
    assert statuses[:5] == [401] * 5
    assert statuses[5] == 429
    blocked = login(web_session, "victim@example.com", "guess")
    assert blocked.json()["error"] == "TOO_MANY_REQUESTS"
    assert int(blocked.headers["Retry-After"]) >= 1


def test_every_error_has_the_contract_shape(web_session, admin_token):
    admin = {**bearer(admin_token), "Content-Type": "application/json"}
    long_body = b'{"firstName": "' + b"x" * (1024 * 1024) + b'"}'
    cases = [
        ("get", "/nope", {}, None, 404, "NOT_FOUND"),
        ("patch", "/api/users", {}, None, 405, "METHOD_NOT_ALLOWED"),
        ("post", "/api/users", admin, b"{not json", 400, "BAD_REQUEST"),
        ("post", "/api/users", admin, b"[1, 2]", 400, "BAD_REQUEST"),
        ("post", "/api/users", admin, long_body, 413, "PAYLOAD_TOO_LARGE"),
        ("post", "/api/users", admin, b'{"firstName": 5}', 422, "VALIDATION_ERROR"),
        ("post", "/api/users", bearer(admin_token), b"{}", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("get", "/api/users/not-an-id", {}, None, 404, "NOT_FOUND"),
        ("get", "/api/users/00000000-0000-0000-0000-000000000000", {}, None, 404, "NOT_FOUND"),
        ("get", "/api/users?limit=0", {}, None, 400, "BAD_REQUEST"),
        ("get", "/api/users?limit=abc", {}, None, 400, "BAD_REQUEST"),
        ("get", "/api/users?cursor=forged", {}, None, 400, "BAD_REQUEST"),
        ("post", "/api/users", {"Authorization": "Token abc"}, b"{}", 401, "UNAUTHORIZED"),
        ("post", "/api/users", {"Authorization": "Bearer not.a.jwt"}, b"{}", 401, "UNAUTHORIZED"),
    ]
    for method, path, headers, body, status, code in cases:
        response = getattr(web_session, method)(path, data=body, headers=headers)
        assert response.status_code == status, (method, path, response.text[:200])
        payload = response.json()
        assert payload["error"] == code
        assert isinstance(payload["message"], str) and payload["message"]
    not_allowed = web_session.patch("/api/users")
    assert set(not_allowed.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_duplicate_email_is_conflict_and_validation_names_fields(web_session, admin_token):
    body = {
        "firstName": "D",
        "lastName": "U",
        "emailAddress": "dup@example.com",
        "password": "x" * 8,
    }
    assert web_session.post("/api/users", json=body, headers=bearer(admin_token)).status_code == 201
    again = web_session.post(
        "/api/users",
        json={**body, "emailAddress": "DUP@example.com"},
        headers=bearer(admin_token),
    )
    assert again.status_code == 409 and again.json()["error"] == "CONFLICT"
    invalid = web_session.post(
        "/api/users",
        json={"emailAddress": "nope", "password": "short"},
        headers=bearer(admin_token),
    )
    assert invalid.status_code == 422
    assert set(invalid.json()["details"]) == {"firstName", "lastName", "emailAddress", "password"}


def test_trailing_slash_and_request_id(web_session, stack):
    response = web_session.get("/api/users/", headers={"X-Request-Id": "trace-me-123"})
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] == "trace-me-123"
    assert web_session.get("/health/").status_code == 200
