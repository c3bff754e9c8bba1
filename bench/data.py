"""Seeded articles, loaded with COPY straight into the bench's articles
database, and what the measures pick from them: ids, a deep cursor, a plan.

Rows are one second apart going back from the moment the bench started, so
growing the table adds older rows behind the first ones. The tag index
(``article_tags``) and each row's ``search_vector`` (in its GIN index) are
filled by the table's own triggers, as for any insert: the table ends in
exactly the state the service makes. Every ``RARE_EVERY``-th row has
``RARE_WORD`` in its title, for a search that finds a few rows in many; every
``COMMON_EVERY``-th row has ``COMMON_WORD``, for a search that finds a tenth
of them (in the title of every other such row, in the description of the
rest: their ranks differ).
"""

import csv
import io
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from articles.service import article_items
from news.items import DEFAULT_SEARCH
from servicekit.db import make_engine
from servicekit.pagination import encode_cursor

COLUMNS = "id, author_uid, title, description, body, status, tags, images_uid, likes, created_at, updated_at"
TAGS = ("traffic", "council", "schools", "sport", "weather")
BODY = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 6  # ~350 bytes
CHUNK_ROWS = 100_000
RARE_WORD = "zeppelin"  # in no other row: not a word of BODY or of the other titles
RARE_EVERY = 100_000
COMMON_WORD = "harbour"  # likewise in no other row
COMMON_EVERY = 10


class SeededArticles:
    def __init__(self, url):
        self.engine = make_engine(url, poolclass=NullPool)
        self.newest = datetime.now(UTC)
        self.count = 0

    def grow_to(self, count):
        """Add the rows ``self.count`` .. ``count - 1`` with COPY, in one
        transaction, then settle the table."""
        starts = range(self.count, count, CHUNK_ROWS)
        if not starts:
            return
        copy = f"COPY articles ({COLUMNS}) FROM STDIN WITH (FORMAT csv)"
        raw = self.engine.raw_connection()
        try:
            with ThreadPoolExecutor(1) as maker, raw.cursor() as cursor:
                # One chunk ahead: the next CSV is made while PostgreSQL takes this one.
                upcoming = maker.submit(self._csv, starts[0], count)
                for start in starts:
                    chunk = upcoming.result()
                    if start + CHUNK_ROWS < count:
                        upcoming = maker.submit(self._csv, start + CHUNK_ROWS, count)
                    cursor.copy_expert(copy, chunk)
            raw.commit()
        finally:
            raw.close()
        self.count = count
        self._settle()

    def _settle(self):
        """Now rather than in the middle of the measures (autovacuum, a spread
        checkpoint): statistics, visibility map and hint bits, and the dirty
        pages written out."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE) articles, article_tags")
            with suppress(DBAPIError):  # needs a superuser or pg_checkpoint; not essential
                conn.exec_driver_sql("CHECKPOINT")

    def _csv(self, start, count):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for i in range(start, min(start + CHUNK_ROWS, count)):
            created = (self.newest - timedelta(seconds=i)).isoformat()
            tags = "{" + f"local,{TAGS[i % len(TAGS)]}" + "}"
            title, description = f"Article {i}", "A seeded article."
            if i % COMMON_EVERY == 0:
                if i % (2 * COMMON_EVERY) == 0:
                    title = f"{title} {COMMON_WORD}"
                else:
                    description = f"A seeded article by the {COMMON_WORD}."
            if i % RARE_EVERY == 0:
                title = f"{title} {RARE_WORD}"
            row = [uuid.uuid4(), "bench", title, description, BODY, 0, tags]
            writer.writerow([*row, "{}", 0, created, created])
        buffer.seek(0)
        return buffer

    @property
    def rare_rows(self):
        """How many rows have ``RARE_WORD``."""
        return -(-self.count // RARE_EVERY)

    @property
    def common_rows(self):
        """How many rows have ``COMMON_WORD``."""
        return -(-self.count // COMMON_EVERY)

    def sample_ids(self, count):
        """``count`` distinct ids, in random order."""
        with self.engine.connect() as conn:
            query = text("SELECT id FROM articles ORDER BY random() LIMIT :count")
            return [str(row_id) for (row_id,) in conn.execute(query, {"count": count})]

    def ids_tagged(self, tag):
        with self.engine.connect() as conn:
            query = text("SELECT id FROM article_tags WHERE tag = :tag")
            return [str(row_id) for (row_id,) in conn.execute(query, {"tag": tag})]

    def cursor_at(self, secret, offset):
        """The API's cursor of the page that starts after row ``offset``, newest first:
        what following ``Link`` headers that far would give, without the walk."""
        with self.engine.connect() as conn:
            query = text(
                "SELECT created_at, id FROM articles "
                "ORDER BY created_at DESC, id DESC OFFSET :offset LIMIT 1"
            )
            created_at, row_id = conn.execute(query, {"offset": offset}).one()
        return encode_cursor(secret, created_at, row_id)

    def page_plan(self, secret, params, search=DEFAULT_SEARCH):
        """How PostgreSQL runs the service's own list query for ``params``
        (``search``: the service's search settings): its scans and the
        execution time, from EXPLAIN ANALYZE. A diagnosis only: should the
        service's code have moved, the reason instead."""
        try:
            return self._page_plan(secret, params, search)
        except Exception as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}

    def _page_plan(self, secret, params, search):
        statements = []

        def capture(conn, cursor, statement, parameters, context, executemany):
            statements.append((statement, parameters))

        event.listen(self.engine, "before_cursor_execute", capture)
        try:
            with self.engine.connect() as connection:
                article_items.list(connection, params, secret=secret, search=search)
        finally:
            event.remove(self.engine, "before_cursor_execute", capture)
        statement, parameters = statements[0]  # the page's (a search that finds nothing asks why)
        with self.engine.connect() as conn:
            explain = conn.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF) " + statement, parameters)
            lines = [line for (line,) in explain]
        scans = [line.strip().removeprefix("->").strip() for line in lines if "Scan" in line]
        return {"scans": scans, "time": lines[-1].strip()}

    def close(self):
        self.engine.dispose()
