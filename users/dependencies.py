"""The admin account, seeded once from ADMIN_EMAIL / ADMIN_PASSWORD."""

import logging

from nameko.extensions import DependencyProvider
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from servicekit.db import DatabaseEngine
from servicekit.outbox import outbox_row
from servicekit.passwords import hash_password

from .models import OutboxMessage, User
from .schemas import user_event_data

log = logging.getLogger(__name__)


def seed_admin(session, email, password):
    """Create the admin user and its ``user_added`` event unless the email exists.

    Safe with any number of copies starting at once: the unique email index
    lets one insert win; the others roll back and change nothing.
    """
    exists = session.scalar(select(User.id).where(func.lower(User.email_address) == email.lower()))
    if exists:
        return False
    user = User(
        first_name="Admin",
        last_name="User",
        email_address=email,
        description="Seeded administrator",
        role="admin",
        password_hash=hash_password(password),
    )
    session.add(user)
    try:
        session.flush()
        session.add(outbox_row(OutboxMessage, "user_added", user.id, user_event_data(user)))
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    log.info("seeded the admin account %s", email)
    return True


class AdminAccount(DependencyProvider):
    """Seeds the admin account when the service starts."""

    database = DatabaseEngine()

    def start(self):
        config = self.container.config
        with Session(self.database.engine) as session:
            seed_admin(session, config["ADMIN_EMAIL"], config["ADMIN_PASSWORD"])
