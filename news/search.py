"""Full-text search of news items (``?q=``).

Each row's ``search_vector`` is kept by the database (a trigger, from each
service's migration): the title weighs most (A), then the description (B),
then the body (C), with the word forms of the language in the table
``search_settings``. A query is read as a web search would read it
(``websearch_to_tsquery``: words, "quoted phrases", ``or``, ``-word``; no
character of it is syntax that can fail), and items are ranked by
``ts_rank``, best first.

``SEARCH_LANGUAGE`` (a PostgreSQL text search configuration: ``english``,
``german``, ``simple``...) is kept in ``search_settings`` by
:class:`SearchLanguage`, which re-indexes every row when it changes.
"""

import logging

from nameko.extensions import DependencyProvider
from sqlalchemy import Float, cast, func, text
from sqlalchemy.dialects.postgresql import REGCONFIG

from servicekit.db import DatabaseEngine

log = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "english"


def matching(search_vector, q, language):
    """``(where clause, rank expression)`` of the query ``q``."""
    query = func.websearch_to_tsquery(cast(language, REGCONFIG), q)
    return search_vector.op("@@")(query), cast(func.ts_rank(search_vector, query), Float)


class SearchLanguage(DependencyProvider):
    """Makes the service's ``search_settings`` follow ``SEARCH_LANGUAGE``
    when the service starts; ``SearchLanguage(Article)``. In a worker, the
    language's name, for :func:`matching`."""

    database = DatabaseEngine()

    def __init__(self, model):
        self.model = model

    def setup(self):
        self.language = self.container.config.get("SEARCH_LANGUAGE") or DEFAULT_LANGUAGE

    def get_dependency(self, worker_ctx):
        return self.language

    def start(self):
        table = self.model.__table__.name
        with self.database.engine.begin() as conn:
            # One copy at a time; the others find the work done.
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('search_settings'))"))
            current = conn.execute(text("SELECT language::text FROM search_settings")).scalar()
            if current == self.language:
                return
            log.warning("search language %s -> %s: re-indexing %s", current, self.language, table)
            conn.execute(
                text(
                    "INSERT INTO search_settings (language) VALUES (CAST(:language AS regconfig))"
                    " ON CONFLICT (only_row) DO UPDATE SET language = excluded.language"
                ),
                {"language": self.language},
            )
            conn.execute(
                text(
                    f"UPDATE {table} SET search_vector = "
                    f"{table}_search_vector(title, description, body)"
                )
            )
