"""A resource over RPC: create, get, list, update, delete, each change an event.

A service subclasses :class:`ResourceService` and names what is its own: the
model, the wire schema, the list query schema, the resource name (``article``
gives ``article_added``/``_updated``/``_deleted``) and its ``db`` and
``outbox`` dependencies (they need the service's own ``Base``). Every RPC
validates with marshmallow on the way in and dumps on the way out; the event
carries the same dump, added to the outbox in the transaction of the change.

The model needs ``id``, ``created_at`` and ``updated_at``, and an index on
``(created_at, id)`` for the keyset pages. ``list_query`` is where a service
adds its filters.
"""

from datetime import timedelta

from sqlalchemy import select

from .base import DomainService
from .db import by_primary_key, parse_id, utcnow
from .errors import BadRequest, Forbidden, NotFound
from .pagination import PageQuerySchema, keyset_page, load_query
from .rpc import rpc
from .schemas import load

# The smallest step of a PostgreSQL timestamp.
_TICK = timedelta(microseconds=1)


class ResourceService(DomainService):
    """Base of a nameko service that owns one resource (see the module doc)."""

    model = None
    schema = None
    list_schema = PageQuerySchema()
    resource = None
    # Fields a client may change but not set on create (counters, say).
    update_only_fields = ()
    # The column ``expected_author`` is checked against.
    author_attribute = "author_uid"

    @rpc
    def create(self, payload):
        if isinstance(payload, dict):
            payload = {k: v for k, v in payload.items() if k not in self.update_only_fields}
        fields = load(self.schema, payload)
        now = utcnow()
        item = self.model(**fields, created_at=now, updated_at=now)
        session = self.db.session
        session.add(item)
        session.flush()
        return self._announce(session, "added", item)

    @rpc
    def get(self, item_id):
        row = (
            self.db.reads.execute(
                by_primary_key(self.model), {"id": parse_id(item_id, self.resource)}
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"No {self.resource} with id {item_id!r}.")
        return self.schema.dump(row)

    @rpc
    def list(self, limit=None, cursor=None, **filters):
        """One page, newest first: ``{"items": [...], "nextCursor": str | None}``.

        ``filters`` are those of ``list_schema`` (the HTTP query parameters);
        an unknown or bad one is a ``BadRequest`` naming it.
        """
        return self.page(
            self.db.reads,
            self.config["JWT_SECRET"],
            {"limit": limit, "cursor": cursor, **filters},
        )

    @rpc
    def update(self, item_id, payload, expected_author=None):
        """Change only the fields sent; ``updatedDate`` moves every time.

        With ``expected_author``, only an item of that author is changed
        (``Forbidden`` otherwise), checked under the row lock.
        """
        session = self.db.session
        item = self._get(session, item_id, for_update=True, expected_author=expected_author)
        for name, value in load(self.schema, payload, partial=True).items():
            setattr(item, name, value)
        # Strictly later than the last update, even with a clock that lags.
        item.updated_at = max(utcnow(), item.updated_at + _TICK)
        session.flush()
        return self._announce(session, "updated", item)

    @rpc
    def delete(self, item_id, expected_author=None):
        """Delete the item and return it as it was (see ``update`` for the author)."""
        session = self.db.session
        item = self._get(session, item_id, for_update=True, expected_author=expected_author)
        data = self.schema.dump(item)
        session.delete(item)
        return self._announce(session, "deleted", item, data)

    @classmethod
    def page(cls, connection, secret, params):
        """A list page on ``connection``: the RPC's code path, callable without a worker."""
        params = load_query(cls.list_schema, params)
        query, key = cls.list_query(params)
        items, next_cursor = keyset_page(
            connection, query, key, limit=params["limit"], cursor=params["cursor"], secret=secret
        )
        return {"items": cls.schema.dump(items, many=True), "nextCursor": next_cursor}

    @classmethod
    def list_query(cls, params):
        """``(select, key)`` of a list: filters add ``where`` clauses; ``key``
        has the ``created_at`` and ``id`` columns the page is ordered by."""
        return select(cls.model.__table__), cls.model

    def _announce(self, session, change, item, data=None):
        """Commit the change with its event; return the item as the API shows it."""
        data = self.schema.dump(item) if data is None else data
        self.outbox.add(session, f"{self.resource}_{change}", item.id, data)
        session.commit()
        return data

    def _get(self, session, item_id, for_update=False, expected_author=None):
        query = select(self.model).where(self.model.id == parse_id(item_id, self.resource))
        if for_update:
            # Serialises concurrent changes of one item, so its events leave
            # the outbox in the order the changes were made.
            query = query.with_for_update()
        item = session.scalar(query)
        if item is None:
            raise NotFound(f"No {self.resource} with id {item_id!r}.")
        if expected_author is not None:
            if not isinstance(expected_author, str):
                raise BadRequest("expected_author must be a string.")
            if getattr(item, self.author_attribute) != expected_author:
                raise Forbidden(
                    f"Only the author of this {self.resource} or an admin may change it."
                )
        return item
