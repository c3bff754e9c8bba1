from sqlalchemy.orm import DeclarativeBase

from servicekit.idempotency import ProcessedEventMixin


class Base(DeclarativeBase):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass
