"""What every domain service has, declared once.

Subclass it through the module (``from servicekit import base`` then
``class UsersService(base.DomainService)``): ``nameko run users.service``
starts every class with entrypoints found in the module's namespace.
"""

from sqlalchemy import select

from .config import Settings
from .logs import CorrelationId
from .rpc import rpc


class DomainService:
    """A checked configuration, correlation ids in the logs, and ``health``.

    The subclass declares ``name`` and ``db`` (its own database).
    """

    config = Settings()
    correlation_id = CorrelationId()

    @rpc
    def health(self):
        self.db.reads.execute(select(1))
        return "ok"
