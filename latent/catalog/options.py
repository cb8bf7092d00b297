"""A collection's index override: the ``IndexSpec`` fields that replace the policy's choice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select

from latent.catalog.collections import not_found
from latent.catalog.engine import Database
from latent.catalog.schema import Collection, IndexOptions


class IndexOptionsStore:
    """Reading and setting the per-collection index override."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def index_options(self, collection_id: int) -> dict[str, Any] | None:
        """The collection's index override (``IndexSpec`` fields), None when unset."""
        stmt = select(IndexOptions.options).where(IndexOptions.collection_id == collection_id)
        with self._db.engine.connect() as conn:
            value = conn.execute(stmt).scalar()
        return dict(value) if value else None

    def set_index_options(self, name: str, options: dict[str, Any] | None) -> None:
        """Set a collection's index override, or clear it with None (or ``{}``).

        Raises:
            NotFound: no collection has that name.
        """
        with self._db.writer.begin() as conn:
            collection_id = conn.execute(
                select(Collection.id).where(Collection.name == name)
            ).scalar()
            if collection_id is None:
                raise not_found(name)
            conn.execute(delete(IndexOptions).where(IndexOptions.collection_id == collection_id))
            if options:
                conn.execute(
                    insert(IndexOptions).values(collection_id=collection_id, options=options)
                )
