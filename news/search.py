"""Full-text search of news items (``?q=``).

Each row's ``search_vector`` is kept by the database (a trigger, from each
service's migration): the title weighs most (A), then the description (B),
then the body (C), with the word forms of the language in the table
``search_settings``. A query is read as a web search would read it
(``websearch_to_tsquery``: words, "quoted phrases", ``or``, ``-word``; no
character of it is syntax that can fail), and items are ranked by
``ts_rank``, best first.

Its cost is bounded however common its words: only the newest
``SEARCH_MAX_MATCHES`` items that match (and match the list's other
filters) are ranked. PostgreSQL finds them either in the GIN index (a rare
word: its few rows, then the newest of them) or by walking the list's
``(created_at, id)`` index from the newest row until it has that many (a
common word: a word in one row of ten is found in about ten times that many
rows); then it ranks them, and the page is cut from them with the ranked
cursor. A query of only exclusions (``-bridge``: everything but) could use
no index, and is refused (:func:`check_query`); one with nothing to look for
(``the``, a stop word) matches nothing, and reads no row.

``SEARCH_LANGUAGE`` (a PostgreSQL text search configuration: ``english``,
``german``, ``simple``...) is kept in ``search_settings`` by
:class:`Search`, which re-indexes every row when it changes.
"""

import logging
from typing import NamedTuple

from nameko.extensions import DependencyProvider
from sqlalchemy import Float, cast, func, text
from sqlalchemy.dialects.postgresql import REGCONFIG

from servicekit.db import DatabaseEngine
from servicekit.errors import ValidationError

log = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "english"
DEFAULT_MAX_MATCHES = 1000
ONLY_EXCLUSIONS = "Say what to look for, not only what to leave out."

# querytree() of a query: the part of it an index can use; "T" when no part
# can (only exclusions: "-bridge" is every item without the word), "" when
# the query has no word to look for (only stop words, or no word at all).
_QUERY_TREE = text("SELECT querytree(websearch_to_tsquery(CAST(:language AS regconfig), :q))")
_NO_INDEX = ("T", "")


class SearchSettings(NamedTuple):
    """A service's search: its word forms (``SEARCH_LANGUAGE``) and how many
    of the newest matches it ranks (``SEARCH_MAX_MATCHES``)."""

    language: str = DEFAULT_LANGUAGE
    max_matches: int = DEFAULT_MAX_MATCHES


def search_query(q, language):
    """The ``tsquery`` of ``q``: a constant, which PostgreSQL reckons once."""
    return func.websearch_to_tsquery(cast(language, REGCONFIG), q)


def matches(search_vector, query):
    """Where ``search_vector`` matches ``query``: false, without a row read,
    for a query that no index can serve (:data:`_NO_INDEX`)."""
    return func.querytree(query).not_in(_NO_INDEX) & search_vector.op("@@")(query)


def rank(search_vector, query):
    """How well ``search_vector`` matches ``query``: more is better."""
    return cast(func.ts_rank(search_vector, query), Float)


def check_query(reads, q, language):
    """Refuse ``q`` if it has only exclusions (``-bridge``, ``-a -b``, ``x or
    -y``: every item but some, which no index can find): a
    ``ValidationError`` naming ``q``. One query, on no table; asked only of a
    search that found nothing, which is what :func:`matches` makes of it."""
    if reads.execute(_QUERY_TREE, {"language": language, "q": q}).scalar() == "T":
        raise ValidationError("The search has nothing to look for.", {"q": [ONLY_EXCLUSIONS]})


class Search(DependencyProvider):
    """Makes the service's ``search_settings`` follow ``SEARCH_LANGUAGE``
    when the service starts, and reads ``SEARCH_MAX_MATCHES``;
    ``Search(Article)``. In a worker, the :class:`SearchSettings`."""

    database = DatabaseEngine()

    def __init__(self, model):
        self.model = model

    def setup(self):
        config = self.container.config
        language = config.get("SEARCH_LANGUAGE") or DEFAULT_LANGUAGE
        max_matches = int(config.get("SEARCH_MAX_MATCHES") or DEFAULT_MAX_MATCHES)
        if max_matches < 1:
            message = f"SEARCH_MAX_MATCHES must be 1 or more, not {max_matches}."
            log.critical("%s", message)
            raise SystemExit(f"refusing to start: {message}")
        self.settings = SearchSettings(language, max_matches)

    def get_dependency(self, worker_ctx):
        return self.settings

    def start(self):
        table = self.model.__table__.name
        with self.database.engine.begin() as conn:
            # One copy at a time; the others find the work done.
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('search_settings'))"))
            current = conn.execute(text("SELECT language::text FROM search_settings")).scalar()
            language = self.settings.language
            if current == language:
                return
            log.warning("search language %s -> %s: re-indexing %s", current, language, table)
            conn.execute(
                text(
                    "INSERT INTO search_settings (language) VALUES (CAST(:language AS regconfig))"
                    " ON CONFLICT (only_row) DO UPDATE SET language = excluded.language"
                ),
                {"language": language},
            )
            conn.execute(
                text(
                    f"UPDATE {table} SET search_vector = "
                    f"{table}_search_vector(title, description, body)"
                )
            )
