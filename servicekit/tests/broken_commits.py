"""Commits that fail as a PostgreSQL restart fails them, on the real server.

:class:`TerminatedCommits` terminates the server process of a connection
(``pg_terminate_backend``, what ``pg_ctl restart -m fast`` does to each)
just before its ``COMMIT`` goes out: the commit then fails with
"terminating connection due to administrator command".
"""

import time

from sqlalchemy import event, text
from sqlalchemy.pool import NullPool

from servicekit.db import make_engine

WAIT_SECONDS = 10


class TerminatedCommits:
    """The next ``count`` commits on ``engine`` of a transaction that ran a
    statement containing ``marker`` fail: its backend is terminated first.

    ``answer_lost``: the transaction is committed before the backend is
    terminated, so the commit fails although its rows are stored (a
    commit whose answer was lost on the way back). ``terminated``: the
    backend pids ended so far. Call :meth:`remove` when done.
    """

    def __init__(self, engine, url, marker, count, answer_lost=False):
        self.engine = engine
        self.marker = marker
        self.left = count
        self.answer_lost = answer_lost
        self.terminated = []
        self._killer = make_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        event.listen(engine, "before_cursor_execute", self._saw)
        event.listen(engine, "commit", self._terminate)

    def _saw(self, conn, cursor, statement, parameters, context, executemany):
        if self.marker in statement:
            conn.info["marked"] = True

    def _terminate(self, conn):
        if not conn.info.pop("marked", False) or self.left <= 0:
            return
        self.left -= 1
        dbapi_connection = conn.connection.dbapi_connection
        if self.answer_lost:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("COMMIT")
        pid = dbapi_connection.get_backend_pid()
        with self._killer.connect() as killer:
            killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            deadline = time.monotonic() + WAIT_SECONDS
            while killer.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ):
                assert time.monotonic() < deadline, f"backend {pid} still there"
                time.sleep(0.01)
        self.terminated.append(pid)

    def remove(self):
        event.remove(self.engine, "before_cursor_execute", self._saw)
        event.remove(self.engine, "commit", self._terminate)
        self._killer.dispose()
