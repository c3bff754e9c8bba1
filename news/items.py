"""News items over RPC: create, get, list, update, delete, each change announced.

A service makes one :class:`NewsItems` for its model and calls it from its
``@rpc`` methods with the worker's dependencies (``self.change`` for changes,
from an ``@writes`` RPC, :mod:`servicekit.writes`; ``self.db.reads`` for
reads). Input is validated with the marshmallow schema on the way in and
dumped with it on the way out; a change's event carries the same dump,
announced in the transaction of the change (``<resource>_added``/
``_updated``/``_deleted``).
"""

from sqlalchemy import select

from servicekit.db import by_primary_key, later_than, parse_id, readable_columns, utcnow
from servicekit.errors import BadRequest, Forbidden, NotFound
from servicekit.pagination import keyset_page, load_query
from servicekit.schemas import load

from .schemas import NewsListQuerySchema
from .search import DEFAULT_LANGUAGE, matching


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

    def create(self, change, payload):
        """Store a new item and announce it; the item as the API shows it."""
        if isinstance(payload, dict):
            payload = {k: v for k, v in payload.items() if k not in self.update_only_fields}
        now = utcnow()
        item = self.model(**load(self.schema, payload), created_at=now, updated_at=now)
        change.session.add(item)
        change.session.flush()
        return self._announce(change, "added", item)

    def get(self, reads, item_id):
        query = by_primary_key(self.model)
        row = reads.execute(query, {"id": parse_id(item_id, self.resource)}).mappings().first()
        if row is None:
            raise NotFound(f"No {self.resource} with id {item_id!r}.")
        return self.schema.dump(row)

    def list(self, reads, params, *, secret, language):
        """One page, newest first (best match first with ``q``):
        ``{"items": [...], "nextCursor": str | None}``.

        ``params`` are the list schema's (the HTTP query parameters); an
        unknown or bad one is a ``BadRequest`` naming it. ``language``: the
        search's word forms (``SEARCH_LANGUAGE``).
        """
        params = load_query(self.list_schema, params)
        query, key, rank = self.list_query(params, language)
        items, next_cursor = keyset_page(
            reads,
            query,
            key,
            limit=params["limit"],
            cursor=params["cursor"],
            secret=secret,
            rank=rank,
        )
        return {"items": self.schema.dump(items, many=True), "nextCursor": next_cursor}

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

    def list_query(self, params, language=DEFAULT_LANGUAGE):
        """``(select, key, rank)`` of a list: ``key`` has the ``created_at``
        and ``id`` columns the page is ordered by (the tag index for
        ``?tag=``); ``rank``, with ``q``, how well an item matches
        (:func:`news.search.matching`), ``None`` otherwise."""
        query, key, rank = select(*readable_columns(self.model)), self.model, None
        if params.get("tag") is not None:
            key = self.tag_model
            query = query.join(key, key.id == self.model.id).where(key.tag == params["tag"])
        if params.get("q") is not None:
            match, rank = matching(self.model.search_vector, params["q"], language)
            query, key = query.where(match).add_columns(rank.label("rank")), self.model
        return self.filters(query, params), key, rank

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
