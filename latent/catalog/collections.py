"""Collections: one model, dimension and metric each, and their asset counts by state."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, insert, select

from latent.catalog.engine import Database
from latent.catalog.records import CollectionInfo
from latent.catalog.schema import ASSET_STATES, Asset, Collection
from latent.errors import FailedPrecondition, NotFound


def not_found(name: str) -> NotFound:
    """The error for a collection name that is not in the catalog."""
    return NotFound(f"collection {name!r} does not exist (see `assetsearch status`)")


def lock_collection(conn: Connection, collection_id: int) -> None:
    """Lock a collection's row for the transaction: its writers commit one at a time.

    So the change log's ``seq`` values of a collection commit in order and a tailing
    reader never skips one. FOR UPDATE is a no-op on SQLite, where BEGIN IMMEDIATE
    already serialises writers.
    """
    conn.execute(select(Collection.id).where(Collection.id == collection_id).with_for_update())


class Collections:
    """Creating and looking up collections."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def ensure_collection(
        self, name: str, model_spec: str, dim: int, metric: str = "ip"
    ) -> CollectionInfo:
        """Return the collection, creating it for this model if it does not exist.

        Raises:
            FailedPrecondition: it exists with another model (one model per collection).
        """
        with self._db.writer.begin() as conn:
            row = conn.execute(select(Collection).where(Collection.name == name)).first()
            if row is None:
                values = dict(name=name, model_spec=model_spec, dim=dim, metric=metric)
                conn.execute(insert(Collection).values(**values))
                row = conn.execute(select(Collection).where(Collection.name == name)).one()
        info = _info(row)
        if info.model_spec != model_spec or info.dim != dim:
            raise FailedPrecondition(
                f"collection {name!r} holds vectors of model {info.model_spec!r} ({info.dim}-d); "
                f"refusing {model_spec!r} ({dim}-d). Use another --collection for another model."
            )
        return info

    def collection(self, name: str) -> CollectionInfo:
        """Look a collection up by name, with its asset counts.

        Raises:
            NotFound: no collection has that name.
        """
        found = self.find_collection(name)
        if found is None:
            raise not_found(name)
        return found

    def find_collection(self, name: str) -> CollectionInfo | None:
        """Like ``collection`` but None when it does not exist."""
        with self._db.engine.connect() as conn:
            row = conn.execute(select(Collection).where(Collection.name == name)).first()
        return None if row is None else _info(row, self.counts(row.id))

    def collections(self) -> list[CollectionInfo]:
        """Every collection with its asset counts by state, by name."""
        with self._db.engine.connect() as conn:
            rows = conn.execute(select(Collection).order_by(Collection.name)).all()
        return [_info(r, self.counts(r.id)) for r in rows]

    def counts(self, collection_id: int) -> dict[str, int]:
        """Asset counts by state (every state present, zero when none)."""
        stmt = (
            select(Asset.state, func.count())
            .where(Asset.collection_id == collection_id)
            .group_by(Asset.state)
        )
        with self._db.engine.connect() as conn:
            found = {state: int(n) for state, n in conn.execute(stmt)}
        return {state: found.get(state, 0) for state in ASSET_STATES}


def _info(row: Any, counts: dict[str, int] | None = None) -> CollectionInfo:
    return CollectionInfo(row.id, row.name, row.model_spec, row.dim, row.metric, counts or {})
