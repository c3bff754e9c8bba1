"""Old rows pruned in the background: the kit's one way to forget.

A :class:`RowPruner` deletes, a batch at a time, the rows of a table whose
time column is older than a retention (or in the past, for an
``expires_at``), on the process's one database engine, and
:func:`keep_doing` runs it (or any housekeeping job, such as discarding
parked messages) every interval, saying a lasting trouble once.

- ``Retention(ProcessedEvent, "processed_at", days_setting="PROCESSED_EVENTS_RETENTION_DAYS",
  days=30)`` on a service: rows whose ``processed_at`` is older than the
  setting's number of days (30 when unset) go, every minute;
- the outbox prunes its published rows, and request keys their expired
  rows, with the same pruner.
"""

import logging

import eventlet
from nameko.extensions import DependencyProvider, Extension
from sqlalchemy import text

from .db import DatabaseEngine
from .logs import Trouble

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 60.0
BATCH = 1000


class RowPruner:
    """Deletes the rows of ``model`` whose ``column`` is over ``seconds`` old
    (``0``: in the past)."""

    def __init__(self, model, column, seconds=0.0):
        table = model.__table__.name
        self.name = f"{table}: pruning"
        self.seconds = seconds
        # By ctid: one statement for any primary key. A NULL column (an
        # outbox row not yet published) never matches.
        self._delete = text(
            f"DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} "
            f"WHERE {column} < now() - make_interval(secs => :seconds) LIMIT {BATCH})"
        )

    def prune(self, engine):
        """Delete one batch of old rows; how many went (``BATCH``: more wait)."""
        with engine.begin() as conn:
            return conn.execute(self._delete, {"seconds": self.seconds}).rowcount


def keep_doing(name, job, interval=INTERVAL_SECONDS):
    """Run ``job()`` for ever: again at once while it says there is more
    (it returns a true value), else after ``interval``. A failure is said once
    while it lasts (``<name> deferred``), and its end once."""
    trouble = Trouble(log)
    while True:
        try:
            more = job()
            trouble.over("%s again", name)
        except Exception as exc:
            trouble.occurred("%s deferred (%s: %s)", name, type(exc).__name__, exc)
            more = False
        if not more:
            eventlet.sleep(interval)


class PrunedTable(Extension):
    """A table of the service pruned in the background by a
    :class:`RowPruner`, its rows kept ``days`` (the setting ``days_setting``
    when set; ``0``: until their time is past). Declared inside the
    extension that owns the table (the outbox, the request keys), or on a
    service as :class:`Retention`."""

    database = DatabaseEngine()

    def __init__(self, model, column, days_setting=None, days=0):
        self.model = model
        self.column = column
        self.days_setting = days_setting
        self.days = days

    def setup(self):
        self.database.setup()
        days = float(self.container.config.get(self.days_setting) or self.days)
        self.pruner = RowPruner(self.model, self.column, days * 86400)

    def start(self):
        def one_batch():
            return self.pruner.prune(self.database.engine) >= BATCH  # more wait

        self._loop = self.container.spawn_managed_thread(
            lambda: keep_doing(self.pruner.name, one_batch)
        )

    def stop(self):
        self._loop.kill()

    kill = stop


class Retention(DependencyProvider):
    """A service's table pruned in the background (see the module doc); no
    dependency for workers."""

    def __init__(self, model, column, days_setting=None, days=0):
        self.table = PrunedTable(model, column, days_setting, days)
