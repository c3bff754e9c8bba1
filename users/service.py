"""Users: profiles and their passwords (hashed here, never stored in clear).

Every change is announced with ``user_added``/``user_updated``/``user_deleted``
through the outbox, committed in the same transaction as the change.
"""

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from servicekit.base import ServiceBase
from servicekit.db import Database, by_primary_key, later_than, parse_id
from servicekit.errors import Conflict, NotFound
from servicekit.pagination import CursorKey, PageQuerySchema, keyset_page, load_query
from servicekit.passwords import hash_password
from servicekit.rpc import rpc
from servicekit.schemas import load
from servicekit.writes import Changes, writes

from .dependencies import AdminAccount
from .models import Base, OutboxMessage, RequestKey, User
from .schemas import user_event_data, user_schema


class UsersService(ServiceBase):
    name = "users"

    db = Database(Base)
    change = Changes(OutboxMessage, RequestKey)
    cursor_key = CursorKey()
    admin_account = AdminAccount()

    @rpc
    @writes
    def create(self, payload):
        """Store a new user; its password is hashed here."""
        session = self.change.session
        fields = load(user_schema, payload)
        password = fields.pop("password")
        user = User(**fields, password_hash=hash_password(password))
        session.add(user)
        _flush_unique_email(session)
        self.change.announce("user_added", user.id, user_event_data(user))
        return user_schema.dump(user)

    @rpc
    def get(self, user_id):
        row = (
            self.db.reads.execute(by_primary_key(User), {"id": parse_id(user_id, "user")})
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"No user with id {user_id!r}.")
        return user_schema.dump(row)

    @rpc
    def get_by_email(self, email_address):
        user = (
            self.db.reads.execute(
                select(User.__table__).where(
                    func.lower(User.email_address) == str(email_address).lower()
                )
            )
            .mappings()
            .first()
        )
        if user is None:
            raise NotFound("No user with that email address.")
        return user_schema.dump(user)

    @rpc
    def list(self, limit=None, cursor=None):
        """One page, newest first: ``{"items": [...], "nextCursor": str | None}``."""
        query = load_query(PageQuerySchema(), {"limit": limit, "cursor": cursor})
        users, next_cursor = keyset_page(
            self.db.reads,
            select(User.__table__),
            User,
            limit=query["limit"],
            cursor=query["cursor"],
            secret=self.cursor_key,
        )
        return {"items": user_schema.dump(users, many=True), "nextCursor": next_cursor}

    @rpc
    @writes
    def update(self, user_id, payload):
        """Change only the fields sent; a new password is hashed here. The
        last admin keeps its role (``Conflict``). A password sent or a role
        changed moves the user's token generation on: every token issued
        before is refused from then on."""
        session = self.change.session
        fields = load(user_schema, payload, partial=True)
        admins = _lock_admins(session) if fields.get("role", "admin") != "admin" else ()
        user = _locked_user(session, user_id)
        if user.role == "admin" and admins == [user.id]:
            raise _last_admin("lose the admin role")
        password = fields.pop("password", None)
        if password is not None or fields.get("role", user.role) != user.role:
            # Under the row lock: concurrent changes of one user count each.
            user.token_generation += 1
        for name, value in fields.items():
            setattr(user, name, value)
        if password is not None:
            user.password_hash = hash_password(password)
        user.updated_at = later_than(user.updated_at)
        _flush_unique_email(session)
        data = user_event_data(user, with_password_hash=password is not None)
        self.change.announce("user_updated", user.id, data)
        return user_schema.dump(user)

    @rpc
    @writes
    def delete(self, user_id):
        """Delete the user and return it as it was; never the last admin."""
        session = self.change.session
        admins = _lock_admins(session)
        user = _locked_user(session, user_id)
        if admins == [user.id]:
            raise _last_admin("be deleted")
        data = user_schema.dump(user)
        session.delete(user)
        return self.change.announce("user_deleted", user.id, data)

    @rpc
    def health(self):
        return self.db.health()


def _locked_user(session, user_id):
    # The row lock serialises concurrent changes of one user, so its events
    # leave the outbox in the order the changes were made.
    query = select(User).where(User.id == parse_id(user_id, "user")).with_for_update()
    user = session.scalar(query)
    if user is None:
        raise NotFound(f"No user with id {user_id!r}.")
    return user


def _flush_unique_email(session):
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        if "uq_users_email_lower" in str(exc.orig):
            raise Conflict(
                "A user with this email address already exists.",
                {"emailAddress": ["Already in use."]},
            ) from None
        raise


def _lock_admins(session):
    """The admins' ids, their rows locked in id order. Taken before the
    changed user's row, always in this order: two admins demoting or
    deleting each other at once take turns (no deadlock), and the second
    sees it would remove the last admin."""
    query = select(User.id).where(User.role == "admin").order_by(User.id).with_for_update()
    return list(session.scalars(query))


def _last_admin(change):
    return Conflict(
        f"The last admin cannot {change}; make another user an admin first.",
        {"role": ["The only admin."]},
    )
