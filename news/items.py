"""News items over RPC: create, get, list, update, delete, each change announced.

A service makes one :class:`NewsItems` for its model and calls it from its
``@rpc`` methods with the worker's dependencies (``self.change`` for changes,
from an ``@writes`` RPC, :mod:`servicekit.writes`; ``self.db.reads`` for
reads). Input is validated with the marshmallow schema on the way in and
dumped with it on the way out (rows by a plan read from it once,
``servicekit.schemas.row_dumper``); a change's event carries the same dump,
announced in the transaction of the change (``<resource>_added``/
``_updated``/``_deleted``).
"""

import logging

from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError

from servicekit.database_errors import TOO_SLOW, meaning
from servicekit.db import (
    PreparedRead,
    by_primary_key,
    later_than,
    parse_id,
    readable_columns,
    utcnow,
)
from servicekit.errors import BadRequest, Forbidden, NotFound, ServiceUnavailable
from servicekit.pagination import keyset_page, load_query
from servicekit.schemas import load, row_dumper

from .schemas import NewsListQuerySchema
from .search import SearchSettings, check_query, matches, rank, search_query

log = logging.getLogger(__name__)

SEARCH_TOO_SLOW = "The search took too long; try again later."
DEFAULT_SEARCH = SearchSettings()


def no_filters(query, params):
    return query


class NewsItems:
    """The items of one service: ``NewsItems("article", Article, ArticleTag,
    ArticleSchema())``. ``filters(query, params)`` adds a service's own
    ``where`` clauses to its lists (events: the date range)."""

    # Fields a client may change but not set on create.
    update_only_fields = ("meta",)

    def __init__(self, resource, model, tag_model, schema, list_schema=None, filters=no_filters):
        self.resource = resource
        self.model = model
        self.tag_model = tag_model
        self.schema = schema
        self.list_schema = list_schema or NewsListQuerySchema()
        self.filters = filters
        # Reads dump trusted rows without marshmallow's machinery, and read
        # by id with a statement each connection prepares once.
        self.dump_row = row_dumper(schema)
        self.by_id = PreparedRead(f"{resource}_by_id", by_primary_key(model))
        self.insert = insert(model.__table__).returning(*readable_columns(model))

    def create(self, change, payload):
        """Store a new item and announce it; the item as the API shows it."""
        if isinstance(payload, dict):
            payload = {k: v for k, v in payload.items() if k not in self.update_only_fields}
        now = utcnow()
        values = {**load(self.schema, payload), "created_at": now, "updated_at": now}
        # Core, not the ORM's unit of work: one INSERT ... RETURNING the row.
        row = change.session.execute(self.insert, values).mappings().one()
        return change.announce(f"{self.resource}_added", row["id"], self.dump_row(row))

    def get(self, reads, item_id):
        row = self.by_id.first(reads, id=parse_id(item_id, self.resource))
        if row is None:
            raise NotFound(f"No {self.resource} with id {item_id!r}.")
        return self.dump_row(row)

    def list(self, reads, params, *, secret, search=DEFAULT_SEARCH):
        """One page, newest first (best match first with ``q``):
        ``{"items": [...], "nextCursor": str | None}``.

        ``params`` are the list schema's (the HTTP query parameters); an
        unknown or bad one is a ``BadRequest`` naming it. ``search``: the
        service's :class:`~news.search.SearchSettings`. A ``q`` of only
        exclusions is a ``ValidationError`` naming it; a search cancelled
        after ``READ_TIMEOUT_MS`` an ``ServiceUnavailable`` saying so.
        """
        params = load_query(self.list_schema, params)
        query, key, rank = self.list_query(params, search)
        try:
            items, next_cursor = keyset_page(
                reads,
                query,
                key,
                limit=params["limit"],
                cursor=params["cursor"],
                secret=secret,
                rank=rank,
            )
        except DBAPIError as exc:
            if rank is None or meaning(exc) != TOO_SLOW:
                raise  # servicekit.rpc answers it by what it means
            log.warning("a search of %ss ran over READ_TIMEOUT_MS and was cancelled", self.resource)
            raise ServiceUnavailable(SEARCH_TOO_SLOW) from exc
        if not items and params.get("q") is not None:
            check_query(reads, params["q"], search.language)  # a q that no index can serve?
        return {"items": [self.dump_row(row) for row in items], "nextCursor": next_cursor}

    def update(self, change, item_id, payload, expected_author=None):
        """Change only the fields sent; ``updatedDate`` moves every time.

        With ``expected_author``, only an item of that author is changed
        (``Forbidden`` otherwise), checked under the row lock.
        """
        item = self._locked(change.session, item_id, expected_author)
        for name, value in load(self.schema, payload, partial=True).items():
            setattr(item, name, value)
        item.updated_at = later_than(item.updated_at)
        change.session.flush()
        return self._announce(change, "updated", item)

    def delete(self, change, item_id, expected_author=None):
        """Delete the item and return it as it was (see ``update`` for the author)."""
        item = self._locked(change.session, item_id, expected_author)
        data = self.schema.dump(item)
        change.session.delete(item)
        return change.announce(f"{self.resource}_deleted", item.id, data)

    def list_query(self, params, search=DEFAULT_SEARCH):
        """``(select, key, rank)`` of a list: ``key`` has the ``created_at``
        and ``id`` columns the page is ordered by (the tag index for
        ``?tag=``); ``rank``, with ``q``, how well an item matches
        (:func:`news.search.rank`), ``None`` otherwise.

        With ``q``, the items ranked are the newest ``search.max_matches``
        that match it and every other filter: a subquery, ``newest`` (by the
        tag index's key with ``?tag=``), which the page is ranked and cut
        from."""
        columns = readable_columns(self.model)
        if params.get("q") is None:
            query, key = self.tagged(select(*columns), params)
            return self.filters(query, params), key, None
        query, vector = search_query(params["q"], search.language), self.model.search_vector
        newest, key = self.tagged(select(*columns, vector).where(matches(vector, query)), params)
        newest = self.filters(newest, params)
        newest = newest.order_by(key.created_at.desc(), key.id.desc()).limit(search.max_matches)
        newest = newest.subquery("newest")
        ranked = rank(newest.c.search_vector, query)
        found = select(*(newest.c[column.key] for column in columns), ranked.label("rank"))
        return found, newest.c, ranked

    def tagged(self, query, params):
        """``(query, key)``: with ``?tag=``, only items with the tag, keyed by
        the tag index (one range of it, newest first)."""
        if params.get("tag") is None:
            return query, self.model
        key = self.tag_model
        query = query.join(key, key.id == self.model.id).where(key.tag == params["tag"])
        return query, key

    def _announce(self, change, what, item):
        return change.announce(f"{self.resource}_{what}", item.id, self.schema.dump(item))

    def _locked(self, session, item_id, expected_author):
        # The row lock serialises concurrent changes of one item, so its
        # events leave the outbox in the order the changes were made.
        query = select(self.model).where(self.model.id == parse_id(item_id, self.resource))
        item = session.scalar(query.with_for_update())
        if item is None:
            raise NotFound(f"No {self.resource} with id {item_id!r}.")
        if expected_author is not None:
            if not isinstance(expected_author, str):
                raise BadRequest("expected_author must be a string.")
            if item.author_uid != expected_author:
                raise Forbidden(
                    f"Only the author of this {self.resource} or an admin may change it."
                )
        return item
