"""Tables that only need their recent rows: the old ones deleted in the background.

``Retention(ProcessedEvent, "processed_at", days_setting="PROCESSED_EVENTS_RETENTION_DAYS",
days=30)``: rows whose ``processed_at`` is older than the setting's number of
days (30 when unset) go, a batch at a time, every minute. With no days, rows
go once their column (an ``expires_at``) is in the past.
"""

import logging

import eventlet
from nameko.extensions import DependencyProvider
from sqlalchemy import text

from .config import database_url
from .db import make_engine
from .logs import Trouble

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 60.0
BATCH = 1000


class RowPruner:
    """Deletes the rows of ``model`` whose ``column`` is over ``seconds`` old."""

    def __init__(self, container, model, column, seconds=0.0):
        table = model.__table__.name
        self.name = table
        self.seconds = seconds
        self.engine = make_engine(database_url(container.config, container.service_name))
        # By ctid: one statement for any primary key.
        self._delete = text(
            f"DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} "
            f"WHERE {column} < now() - make_interval(secs => :seconds) LIMIT {BATCH})"
        )

    def prune(self):
        """Delete one batch of old rows; how many went."""
        with self.engine.begin() as conn:
            return conn.execute(self._delete, {"seconds": self.seconds}).rowcount

    def forever(self):
        trouble = Trouble(log)
        while True:
            try:
                deleted = self.prune()
                trouble.over("%s: pruning again", self.name)
            except Exception as exc:
                trouble.occurred(
                    "%s: pruning deferred (%s: %s)", self.name, type(exc).__name__, exc
                )
                deleted = 0
            if deleted < BATCH:
                eventlet.sleep(INTERVAL_SECONDS)

    def close(self):
        self.engine.dispose()


class Retention(DependencyProvider):
    """A service's table pruned in the background (see the module doc)."""

    def __init__(self, model, column, days_setting=None, days=0):
        self.model = model
        self.column = column
        self.days_setting = days_setting
        self.days = days

    def setup(self):
        days = float(self.container.config.get(self.days_setting) or self.days)
        self.pruner = RowPruner(self.container, self.model, self.column, days * 86400)

    def start(self):
        self._loop = self.container.spawn_managed_thread(self.pruner.forever)

    def stop(self):
        self._loop.kill()
        self.pruner.close()

    kill = stop
