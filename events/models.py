from sqlalchemy.orm import DeclarativeBase

from servicekit.outbox import OutboxMixin


class Base(DeclarativeBase):
    pass


class OutboxMessage(OutboxMixin, Base):
    pass
