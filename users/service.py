"""Users: profiles and their passwords (hashed here, never stored in clear).

Every change is announced with ``user_added``/``user_updated``/``user_deleted``
through the outbox, committed in the same transaction as the change.
"""

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from servicekit.base import ServiceBase
from servicekit.db import Database, by_primary_key, parse_id, utcnow
from servicekit.errors import Conflict, NotFound
from servicekit.outbox import Outbox
from servicekit.pagination import PageQuerySchema, keyset_page, load_query
from servicekit.passwords import hash_password
from servicekit.rpc import rpc
from servicekit.schemas import load

from .dependencies import AdminAccount
from .models import Base, OutboxMessage, User
from .schemas import user_event_data, user_schema


class UsersService(ServiceBase):
    name = "users"

    db = Database(Base)
    outbox = Outbox(OutboxMessage)
    admin_account = AdminAccount()

    @rpc
    def create(self, payload):
        fields = load(user_schema, payload)
        password = fields.pop("password")
        user = User(**fields, password_hash=hash_password(password))
        session = self.db.session
        session.add(user)
        self._flush_unique_email(session)
        self.outbox.add(session, "user_added", user.id, user_event_data(user))
        session.commit()
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
            secret=self.config["JWT_SECRET"],
        )
        return {"items": user_schema.dump(users, many=True), "nextCursor": next_cursor}

    @rpc
    def update(self, user_id, payload):
        """Change only the fields sent; a new password is hashed here."""
        fields = load(user_schema, payload, partial=True)
        session = self.db.session
        user = self._get(session, user_id, for_update=True)
        password = fields.pop("password", None)
        for name, value in fields.items():
            setattr(user, name, value)
        if password is not None:
            user.password_hash = hash_password(password)
        user.updated_at = utcnow()
        self._flush_unique_email(session)
        data = user_event_data(user, with_password_hash=password is not None)
        self.outbox.add(session, "user_updated", user.id, data)
        session.commit()
        return user_schema.dump(user)

    @rpc
    def delete(self, user_id):
        session = self.db.session
        user = self._get(session, user_id, for_update=True)
        result = user_schema.dump(user)
        session.delete(user)
        self.outbox.add(session, "user_deleted", user.id, result)
        session.commit()
        return result

    @rpc
    def health(self):
        return self.db.health()

    def _get(self, session, user_id, for_update=False):
        query = select(User).where(User.id == parse_id(user_id, "user"))
        if for_update:
            # Serialises concurrent changes of one user, so its events leave
            # the outbox in the order the changes were made.
            query = query.with_for_update()
        user = session.scalar(query)
        if user is None:
            raise NotFound(f"No user with id {user_id!r}.")
        return user

    @staticmethod
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
