"""Writes through the gateway that must act once, or not at all."""

import hashlib
import json
import threading
import uuid

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import func, select

from articles.models import Article
from articles.models import OutboxMessage as ArticleEvent
from servicekit.errors import ValidationError
from servicekit.tokens import verify_token
from tests.conftest import bearer
from tests.test_content_api import ARTICLE
from users.models import RequestKey as UserRequestKey
from users.models import User


def keyed(token, key):
    return {**bearer(token), "Idempotency-Key": key}


def test_a_repeat_with_the_same_key_answers_the_first_answer_and_acts_once(
    web_session, make_user, db_session
):
    _, token = make_user()
    key = f"create-{uuid.uuid4()}"
    first = web_session.post("/api/articles", json=ARTICLE, headers=keyed(token, key))
    # The same JSON, spaced and ordered otherwise, is the same request.
    same = (
        '{ "body": "After two years ...", "title": "Bridge reopens", "description": "On Monday." }'
    )
    headers = {**keyed(token, key), "Content-Type": "application/json"}
    again = web_session.post("/api/articles", data=same, headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    articles = db_session("articles")
    assert articles.scalar(select(func.count()).select_from(Article)) == 1
    assert articles.scalar(select(func.count()).select_from(ArticleEvent)) == 1

    other = web_session.post(
        "/api/articles", json={**ARTICLE, "title": "Other"}, headers=keyed(token, key)
    )
    assert (other.status_code, other.json()["error"]) == (422, "VALIDATION_ERROR")
    assert "Idempotency-Key" in other.json()["details"]


def test_a_key_fingerprint_is_keyed_and_blind_to_the_password(web_session, admin_token, db_session):
    key = f"new-user-{uuid.uuid4()}"
    body = {
        "firstName": "Kay",
        "lastName": "Ed",
        "emailAddress": f"kay-{uuid.uuid4().hex}@example.com",
        "password": "a guessable password",
    }
    first = web_session.post("/api/users", json=body, headers=keyed(admin_token, key))
    assert first.status_code == 201, first.text

    users = db_session("users")
    stored = users.scalar(select(UserRequestKey.fingerprint).where(UserRequestKey.key == key))
    # Whoever reads the table cannot test password guesses against it.
    for plain in (
        json.dumps(["POST", "/api/users", body], sort_keys=True),
        json.dumps(body, sort_keys=True),
    ):
        assert stored != hashlib.sha256(plain.encode()).hexdigest()

    # A repeat that differs only in its password is the same request: the
    # first answer, nothing done again, the same fingerprint.
    repeat = {**body, "password": "another password"}
    again = web_session.post("/api/users", json=repeat, headers=keyed(admin_token, key))
    assert (again.status_code, again.json()) == (201, first.json())
    users.rollback()  # a fresh snapshot
    assert users.scalar(select(func.count()).where(User.email_address == body["emailAddress"])) == 1
    assert users.scalar(select(UserRequestKey.fingerprint).where(UserRequestKey.key == key)) == (
        stored
    )
    other = {**body, "firstName": "Other"}
    refused = web_session.post("/api/users", json=other, headers=keyed(admin_token, key))
    assert (refused.status_code, refused.json()["error"]) == (422, "VALIDATION_ERROR")


def test_keys_belong_to_their_caller(web_session, make_user):
    (_, alice), (_, bob) = make_user(), make_user()
    key = f"shared-{uuid.uuid4()}"
    one = web_session.post("/api/articles", json=ARTICLE, headers=keyed(alice, key))
    two = web_session.post("/api/articles", json=ARTICLE, headers=keyed(bob, key))
    assert one.status_code == two.status_code == 201
    assert one.json()["id"] != two.json()["id"]


def test_update_and_delete_with_a_key_act_once(web_session, make_user, db_session):
    _, token = make_user()
    article = web_session.post("/api/articles", json=ARTICLE, headers=bearer(token)).json()
    path = f"/api/articles/{article['id']}"
    key = f"update-{uuid.uuid4()}"
    updates = [
        web_session.put(path, json={"title": "Once"}, headers=keyed(token, key)) for _ in range(2)
    ]
    assert updates[0].json() == updates[1].json()
    delete_key = f"delete-{uuid.uuid4()}"
    deletes = [web_session.delete(path, headers=keyed(token, delete_key)) for _ in range(2)]
    assert [d.status_code for d in deletes] == [200, 200]
    assert deletes[0].json() == deletes[1].json() == updates[0].json()
    events = db_session("articles").scalars(select(ArticleEvent.event_type)).all()
    assert events == ["article_added", "article_updated", "article_deleted"]


def test_a_repeat_while_the_first_still_runs_is_409(stack, web_session, make_user, db_session):
    _, token = make_user()
    key = f"slow-{uuid.uuid4()}"
    # Hold the key as a running request would: its transaction keeps the lock.
    held = db_session("articles")
    held.execute(
        select(
            func.pg_advisory_xact_lock(
                func.hashtextextended(f"request-key\n{_user_id(stack, token)}\n{key}", 0)
            )
        )
    )
    response = web_session.post("/api/articles", json=ARTICLE, headers=keyed(token, key))
    assert (response.status_code, response.json()["error"]) == (409, "CONFLICT")
    held.rollback()
    assert (
        web_session.post("/api/articles", json=ARTICLE, headers=keyed(token, key)).status_code
        == 201
    )


def _user_id(config, token):
    return verify_token(config["JWT_SECRET"], token)["sub"]


def test_a_redelivered_create_acts_once(stack, make_user, db_session):
    """What RabbitMQ does when a worker dies before its ack: the same
    request, with the key the gateway gave it, runs again."""
    user, _ = make_user()
    request_key = {"caller": user["id"], "key": f"gateway:{uuid.uuid4().hex}", "seconds": 600}
    body = {**ARTICLE, "authorUID": user["id"]}
    with ClusterRpcProxy(stack) as cluster:
        answers = [cluster.articles.create(body, request_key=request_key) for _ in range(2)]
    assert answers[0] == answers[1]
    assert db_session("articles").scalar(select(func.count()).select_from(Article)) == 1


def test_concurrent_repeats_act_once(web_session, make_user, db_session):
    _, token = make_user()
    key = f"burst-{uuid.uuid4()}"
    statuses = []

    def post():
        statuses.append(
            web_session.post("/api/articles", json=ARTICLE, headers=keyed(token, key)).status_code
        )

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(statuses) <= {201, 409} and 201 in statuses
    assert db_session("articles").scalar(select(func.count()).select_from(Article)) == 1


def test_unknown_fields_are_named_and_server_owned_ones_ignored(web_session, make_user):
    _, token = make_user()
    response = web_session.post(
        "/api/articles", json={**ARTICLE, "colour": "red", "id": "mine"}, headers=bearer(token)
    )
    assert (response.status_code, response.json()["details"]) == (
        422,
        {"colour": ["Unknown field."]},
    )


@pytest.mark.parametrize("change", ["demote", "delete"])
def test_the_last_admin_stays(web_session, admin_token, stack, make_user, change):
    admin_id = _user_id(stack, admin_token)
    path = f"/api/users/{admin_id}"
    if change == "demote":
        response = web_session.put(path, json={"role": "regular"}, headers=bearer(admin_token))
    else:
        response = web_session.delete(path, headers=bearer(admin_token))
    assert (response.status_code, response.json()["error"]) == (409, "CONFLICT")
    assert "last admin" in response.json()["message"]

    # With a second admin, the first may go.
    make_user(role="admin")
    response = web_session.put(path, json={"role": "regular"}, headers=bearer(admin_token))
    assert response.status_code == 200, response.text


def test_nul_over_rpc_is_a_validation_error_and_stores_nothing(stack, db_session):
    with ClusterRpcProxy(stack) as cluster, pytest.raises(ValidationError) as err:
        cluster.articles.create({**ARTICLE, "authorUID": "a", "title": "a\x00b"})
    assert "title" in err.value.details
    assert db_session("articles").scalar(select(func.count()).select_from(Article)) == 0
