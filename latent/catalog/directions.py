"""Named directions of a collection, stored as raw float32 vectors with their examples."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select

from latent.catalog.engine import Database
from latent.catalog.records import CollectionInfo, DirectionRecord
from latent.catalog.schema import Direction
from latent.errors import AlreadyExists, NotFound

VECTOR_DTYPE = "<f4"  # directions are few: stored at full precision


def _not_found(collection: CollectionInfo, name: str) -> NotFound:
    return NotFound(f"direction {name!r} does not exist in collection {collection.name!r}")


class Directions:
    """Saving, listing and deleting named directions."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def save_direction(
        self, collection: CollectionInfo, record: DirectionRecord
    ) -> DirectionRecord:
        """Store a new named direction; returns it as stored.

        Raises:
            AlreadyExists: the collection has a direction of that name.
        """
        values = dict(
            collection_id=collection.id,
            name=record.name,
            vector=np.asarray(record.vector, dtype=VECTOR_DTYPE).tobytes(),
            norm=record.norm,
            examples=record.examples,
            orthogonal_to=list(record.orthogonal_to),
        )
        with self._db.writer.begin() as conn:
            taken = conn.execute(
                select(Direction.id).where(
                    Direction.collection_id == collection.id, Direction.name == record.name
                )
            ).first()
            if taken:
                raise AlreadyExists(
                    f"direction {record.name!r} exists in collection {collection.name!r}; "
                    "delete it first or pick another name"
                )
            conn.execute(insert(Direction).values(**values))
        return self.direction(collection, record.name)

    def directions(self, collection: CollectionInfo) -> list[DirectionRecord]:
        """Every named direction of a collection, by name."""
        stmt = (
            select(Direction)
            .where(Direction.collection_id == collection.id)
            .order_by(Direction.name)
        )
        with self._db.engine.connect() as conn:
            return [_direction(r) for r in conn.execute(stmt)]

    def direction(self, collection: CollectionInfo, name: str) -> DirectionRecord:
        """One named direction.

        Raises:
            NotFound: the collection has no direction of that name.
        """
        stmt = select(Direction).where(
            Direction.collection_id == collection.id, Direction.name == name
        )
        with self._db.engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            raise _not_found(collection, name)
        return _direction(row)

    def delete_direction(self, collection: CollectionInfo, name: str) -> None:
        """Delete a named direction.

        Raises:
            NotFound: the collection has no direction of that name.
        """
        stmt = delete(Direction).where(
            Direction.collection_id == collection.id, Direction.name == name
        )
        with self._db.writer.begin() as conn:
            if conn.execute(stmt).rowcount == 0:
                raise _not_found(collection, name)


def _direction(row: Any) -> DirectionRecord:
    return DirectionRecord(
        name=row.name,
        vector=np.frombuffer(row.vector, dtype=VECTOR_DTYPE).copy(),
        norm=row.norm,
        examples=row.examples,
        orthogonal_to=tuple(row.orthogonal_to),
        created_at=row.created_at,
    )
