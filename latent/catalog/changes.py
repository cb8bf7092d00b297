"""The change log: entries written inside a write transaction, and the feed an index reads.

Every add, delete and row update of an embedding gets a ``seq``; an index snapshot
records the ``seq`` it reflects and replays the entries after it. Entries of one
transaction are written in embedding-id order, so every backend logs the same sequence.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
from sqlalchemy import Connection, delete, func, insert, literal, select

from latent.catalog.engine import Database, in_chunks
from latent.catalog.records import ChangeBatch, CollectionInfo, decode_rows
from latent.catalog.schema import Change, Embedding

Op = Literal["add", "delete", "update"]
_COLUMNS = ["collection_id", "op", "embedding_id", "asset_id"]


def log(conn: Connection, collection_id: int, op: Op, owned: Sequence[tuple[int, int]]) -> None:
    """Log ``op`` for each (embedding id, asset id) pair, in order."""
    if owned:
        rows = [
            dict(collection_id=collection_id, op=op, embedding_id=e, asset_id=a) for e, a in owned
        ]
        conn.execute(insert(Change), rows)


def log_updates(conn: Connection, asset_ids: Sequence[int]) -> None:
    """Log an ``update`` for every embedding of the assets (their rows changed)."""
    for chunk in in_chunks(sorted(asset_ids)):
        vectors = (
            select(Embedding.collection_id, literal("update"), Embedding.id, Embedding.asset_id)
            .where(Embedding.asset_id.in_(chunk))
            .order_by(Embedding.id)
        )
        conn.execute(insert(Change).from_select(_COLUMNS, vectors))


def log_added_after(conn: Connection, collection_id: int, before: int) -> None:
    """Log an ``add`` for every embedding of the collection with an id above ``before``."""
    added = (
        select(Embedding.collection_id, literal("add"), Embedding.id, Embedding.asset_id)
        .where(Embedding.collection_id == collection_id, Embedding.id > before)
        .order_by(Embedding.id)
    )
    conn.execute(insert(Change).from_select(_COLUMNS, added))


def drop_vectors(conn: Connection, collection_id: int, asset_ids: Sequence[int]) -> None:
    """Delete the assets' embeddings and log each as deleted."""
    for chunk in in_chunks(sorted(asset_ids)):
        old = conn.execute(
            select(Embedding.id, Embedding.asset_id)
            .where(Embedding.asset_id.in_(chunk))
            .order_by(Embedding.id)
        ).all()
        if old:
            conn.execute(delete(Embedding).where(Embedding.asset_id.in_(chunk)))
            log(conn, collection_id, "delete", [(e, a) for e, a in old])


class ChangeFeed:
    """What an index is built from: every stored vector, then the log after a ``seq``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def head_seq(self, collection_id: int) -> int:
        """The newest change-log ``seq`` of a collection (0 when empty)."""
        stmt = select(func.max(Change.seq)).where(Change.collection_id == collection_id)
        with self._db.engine.connect() as conn:
            return int(conn.execute(stmt).scalar() or 0)

    def all_vectors(
        self, collection: CollectionInfo, chunk: int = 50_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every stored embedding of a collection as (ids, float32 vectors) chunks, by id."""
        last = 0
        while True:
            stmt = (
                select(Embedding.id, Embedding.vector, Embedding.dtype)
                .where(Embedding.collection_id == collection.id, Embedding.id > last)
                .order_by(Embedding.id)
                .limit(chunk)
            )
            with self._db.engine.connect() as conn:
                rows = conn.execute(stmt).all()
            if not rows:
                return
            ids = np.fromiter((r.id for r in rows), dtype=np.int64, count=len(rows))
            yield ids, decode_rows(rows, collection.dim)
            last = int(ids[-1])

    def changes_since(
        self, collection: CollectionInfo, seq: int, limit: int = 100_000
    ) -> ChangeBatch:
        """Change-log entries after ``seq``, folded into removals, additions and updates.

        An id both added and removed in the range is only removed; an added id whose
        embedding is gone by now is skipped (a later delete entry covers it); an update
        of an id added in the same range is part of that addition.
        """
        stmt = (
            select(Change.seq, Change.op, Change.embedding_id)
            .where(Change.collection_id == collection.id, Change.seq > seq)
            .order_by(Change.seq)
            .limit(limit)
        )
        with self._db.engine.connect() as conn:
            rows = conn.execute(stmt).all()
            final = _fold(rows)
            found = _stored(conn, [e for e, op in final.items() if op == "add"])
        if not rows:
            empty = np.zeros(0, dtype=np.int64)
            return ChangeBatch(seq, empty, empty, np.zeros((0, collection.dim), np.float32))

        def ids_of(op: Op) -> np.ndarray:
            return np.fromiter((e for e, o in final.items() if o == op), dtype=np.int64)

        return ChangeBatch(
            int(rows[-1].seq),
            ids_of("delete"),
            np.fromiter((r.id for r in found), dtype=np.int64, count=len(found)),
            decode_rows(found, collection.dim),
            updated=ids_of("update"),
        )


def _fold(rows: Sequence[Any]) -> dict[int, str]:
    """The last op of each embedding, in first-seen order; an add absorbs later updates."""
    final: dict[int, str] = {}
    for r in rows:
        if r.op != "update" or final.get(r.embedding_id) != "add":
            final[r.embedding_id] = r.op
    return final


def _stored(conn: Connection, embedding_ids: Sequence[int]) -> list[Any]:
    """The id, vector and dtype rows of those embeddings that still exist."""
    found: list[Any] = []
    for chunk in in_chunks(embedding_ids):
        stmt = (
            select(Embedding.id, Embedding.vector, Embedding.dtype)
            .where(Embedding.id.in_(chunk))
            .order_by(Embedding.id)
        )
        found.extend(conn.execute(stmt).all())
    return found
