"""The notification service: a running skeleton (health and its own database)."""

from nameko.rpc import rpc
from sqlalchemy import select

from servicekit.config import Settings
from servicekit.db import Database
from servicekit.logs import CorrelationId

from .models import Base


class NotificationService:
    name = "notification"

    config = Settings()
    correlation_id = CorrelationId()
    db = Database(Base)

    @rpc
    def health(self):
        self.db.session.execute(select(1))
        return "ok"
