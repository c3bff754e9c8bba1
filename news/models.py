"""Columns of a news item, and the ``?tag=`` index.

``?tag=`` pages come from a side table ``<item>_tags (tag, created_at, id)``
kept by a trigger (created by each service's migration): one index range scan
per page whatever the table size and however a tag is spread over time. (A
GIN index on ``tags`` with the ``(created_at, id)`` index measured 190 ms
instead of 0.5 ms for a tag found only on old rows of a million: the planner
scans the newest rows first.)
"""

import uuid

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import REGCONFIG, TSVECTOR
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from servicekit.db import INTERNAL, id_column, timestamp_column


def counter_column():
    """A ``meta`` counter (``likes``, ``attending``)."""
    return mapped_column(Integer, nullable=False, default=0)


class NewsItemMixin:
    """Columns of a news item; the model names its ``meta`` ``counters``."""

    counters = ()

    id: Mapped[uuid.UUID] = id_column()
    author_uid = mapped_column(String(64), nullable=False)
    title = mapped_column(String(200), nullable=False)
    description = mapped_column(Text, nullable=False)
    body = mapped_column(Text, nullable=False)
    status = mapped_column(Integer, nullable=False, default=0)
    tags = mapped_column(ARRAY(String), nullable=False, default=list)
    images_uid = mapped_column(ARRAY(String), nullable=False, default=list)
    created_at = timestamp_column()
    updated_at = timestamp_column()
    # Kept by a trigger from title, description and body (news.search); never
    # read back, so left out of what reads select (servicekit.db.INTERNAL).
    search_vector = mapped_column(TSVECTOR, nullable=True, info=INTERNAL)

    @declared_attr.directive
    def __table_args__(cls):  # noqa: N805 - SQLAlchemy passes the class
        table = cls.__tablename__
        return (
            Index(f"ix_{table}_created_at_id", "created_at", "id"),
            Index(f"ix_{table}_search", "search_vector", postgresql_using="gin"),
        )

    @property
    def meta(self):
        return {name: getattr(self, name) for name in self.counters}

    @meta.setter
    def meta(self, values):  # an update's validated ``meta``
        for name, value in values.items():
            setattr(self, name, value)


class TagIndexMixin:
    """The ``?tag=`` index of ``item_table``: a row per tag of each item."""

    item_table = None

    tag = mapped_column(String, nullable=False)
    created_at = mapped_column(DateTime(timezone=True), nullable=False)

    @declared_attr
    def id(cls):  # noqa: N805 - SQLAlchemy passes the class
        return mapped_column(
            Uuid, ForeignKey(f"{cls.item_table}.id", ondelete="CASCADE"), nullable=False
        )

    @declared_attr.directive
    def __table_args__(cls):  # noqa: N805
        # In list order within a tag: the page is a backward range scan.
        return (PrimaryKeyConstraint("tag", "created_at", "id"),)


class SearchSettingsMixin:
    """The language of the search's word forms: one row (news.search)."""

    __tablename__ = "search_settings"

    language = mapped_column(REGCONFIG, nullable=False)
    only_row = mapped_column(Boolean, primary_key=True, server_default="true")

    __table_args__ = (CheckConstraint("only_row", name="search_settings_one_row"),)
