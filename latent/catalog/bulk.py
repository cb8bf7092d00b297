"""Bulk import of externally computed vectors: choosing the collection, writing a batch.

Row i of a batch becomes the asset ``vector:ids[i]`` (media type ``vector``) with one
unit vector. The batch is checked (``latent.catalog.external``) before anything is
written, and the writes are a few set-wise statements in one transaction, so a
rejected batch leaves no trace.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from sqlalchemy import Connection, bindparam, func, insert, select, update

from latent.catalog.changes import drop_vectors, log_added_after
from latent.catalog.collections import lock_collection
from latent.catalog.engine import Database
from latent.catalog.external import (
    EXTERNAL_MODEL,
    MEDIA_TYPE,
    check_batch,
    check_dim,
    external_uri,
)
from latent.catalog.records import STORE_DTYPE, CollectionInfo
from latent.catalog.schema import INDEXED, Asset, Embedding
from latent.catalog.writes import asset_ids
from latent.errors import DimensionMismatch, FailedPrecondition

Row = tuple[str, dict[str, Any] | None]
"""An imported asset's uri and its metadata (None keeps what an existing asset has)."""


@dataclass(frozen=True)
class ImportCounts:
    """What one import did: rows that became new assets and rows that replaced a vector."""

    added: int = 0
    replaced: int = 0

    def __add__(self, other: ImportCounts) -> ImportCounts:
        return ImportCounts(self.added + other.added, self.replaced + other.replaced)


class CollectionLookup(Protocol):
    """The part of a catalog that ``import_collection`` needs."""

    def find_collection(self, name: str) -> CollectionInfo | None: ...

    def ensure_collection(
        self, name: str, model_spec: str, dim: int, metric: str = "ip"
    ) -> CollectionInfo: ...


def import_collection(
    catalog: CollectionLookup, name: str, model_spec: str, dim: int
) -> CollectionInfo:
    """The collection to import ``dim``-d vectors into, created when missing.

    Args:
        catalog: The catalog.
        name: Collection name.
        model_spec: The model that computed the vectors; "" means the existing
            collection's, or ``EXTERNAL_MODEL`` for a new one.
        dim: Dimension of the vectors.

    Raises:
        DimensionMismatch: the collection exists with another dimension.
        FailedPrecondition: it exists with another model.
        InvalidArgument: the dimension is out of range.
    """
    check_dim(dim)
    existing = catalog.find_collection(name)
    if existing is None:
        return catalog.ensure_collection(name, model_spec or EXTERNAL_MODEL, dim)
    if model_spec and model_spec != existing.model_spec:
        raise FailedPrecondition(
            f"collection {name!r} holds vectors of model {existing.model_spec!r}, not "
            f"{model_spec!r}; import into another collection (one model per collection)"
        )
    if dim != existing.dim:
        raise _dimension_mismatch(dim, existing)
    return existing


def _dimension_mismatch(dim: int, collection: CollectionInfo) -> DimensionMismatch:
    return DimensionMismatch(
        f"the vectors are {dim}-d; collection {collection.name!r} ({collection.model_spec}) "
        f"is {collection.dim}-d"
    )


class BulkImport:
    """Writing batches of external vectors."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def import_vectors(
        self,
        collection: CollectionInfo,
        ids: Sequence[str],
        vectors: np.ndarray,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        row_offset: int = 0,
    ) -> ImportCounts:
        """Write a batch of externally computed vectors in one transaction.

        An id already there gets its vector replaced, and its metadata when
        ``metadata[i]`` is not None (None keeps it; a new asset gets ``{}``).

        Raises:
            DimensionMismatch: the vectors are not of the collection's dimension.
            InvalidArgument: no rows, a count mismatch, a bad or repeated id, a NaN,
                infinite or zero row (row numbers count from ``row_offset``).
        """
        if vectors.ndim == 2 and vectors.shape[1] != collection.dim:
            raise _dimension_mismatch(vectors.shape[1], collection)
        unit = check_batch(ids, vectors, metadata, row_offset)
        blobs = [row.tobytes() for row in unit.astype(STORE_DTYPE)]
        uris = [external_uri(i) for i in ids]
        rows = [(u, None if metadata is None else metadata[i]) for i, u in enumerate(uris)]
        with self._db.writer.begin() as conn:
            lock_collection(conn, collection.id)
            existing = asset_ids(conn, collection.id, uris)
            _replace(conn, collection.id, existing, rows)
            created = _insert_assets(conn, collection.id, [r for r in rows if r[0] not in existing])
            owners = [existing.get(u) or created[u] for u in uris]
            _insert_vectors(conn, collection.id, owners, blobs)
        return ImportCounts(added=len(uris) - len(existing), replaced=len(existing))


def _replace(
    conn: Connection, collection_id: int, existing: dict[str, int], rows: list[Row]
) -> None:
    """Drop the old vectors of re-imported ids and mark their assets indexed again."""
    if not existing:
        return
    drop_vectors(conn, collection_id, list(existing.values()))
    revive = (
        update(Asset)
        .where(Asset.id == bindparam("b_id"))
        .values(state=INDEXED, error=None, updated_at=func.now())
    )
    kept = [{"b_id": existing[u]} for u, meta in rows if u in existing and meta is None]
    replaced = [
        {"b_id": existing[u], "user_metadata": meta}
        for u, meta in rows
        if u in existing and meta is not None
    ]
    for params in (kept, replaced):
        if params:
            conn.execute(revive, params)


def _insert_assets(conn: Connection, collection_id: int, rows: list[Row]) -> dict[str, int]:
    """Insert new assets and read their ids back (no per-row RETURNING: far faster)."""
    if not rows:
        return {}
    # Under the collection lock, every asset of this collection above the current
    # maximum id is one inserted here (SQLite rowids and PostgreSQL sequences grow).
    before = conn.execute(select(func.max(Asset.id))).scalar() or 0
    empty = json.dumps({})
    columns = ("collection_id", "uri", "media_type", "size", "mtime_ns", "state", "user_metadata")
    values = [
        (collection_id, uri, MEDIA_TYPE, 0, 0, INDEXED, json.dumps(meta) if meta else empty)
        for uri, meta in rows
    ]
    _bulk_insert(conn, Asset.__table__, columns, values)
    stmt = select(Asset.uri, Asset.id).where(
        Asset.collection_id == collection_id, Asset.id > before
    )
    return dict(conn.execute(stmt).all())


def _insert_vectors(
    conn: Connection, collection_id: int, owners: list[int], blobs: list[bytes]
) -> None:
    """Insert one embedding per asset and log each as added, set-wise."""
    before = conn.execute(select(func.max(Embedding.id))).scalar() or 0
    dtype = STORE_DTYPE.str
    _bulk_insert(
        conn,
        Embedding.__table__,
        ("collection_id", "asset_id", "vector", "dtype"),
        [(collection_id, o, blob, dtype) for o, blob in zip(owners, blobs, strict=True)],
    )
    log_added_after(conn, collection_id, before)


def _bulk_insert(
    conn: Connection, table: Any, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """One INSERT compiled by SQLAlchemy, run by the driver's executemany over ``rows``.

    On a bulk import SQLAlchemy's per-row parameter processing costs about as much as
    SQLite's own work; these rows already hold driver values (ints, str, bytes, JSON
    text), so they go to the driver as they are, still as bound parameters.
    """
    stmt = insert(table).values({c: bindparam(c) for c in columns})
    compiled = stmt.compile(dialect=conn.dialect)
    if compiled.positional:
        order = [columns.index(name) for name in compiled.positiontup or ()]
        in_order = order == list(range(len(columns)))
        params: list[Any] = rows if in_order else [tuple(row[i] for i in order) for row in rows]
    else:
        params = [dict(zip(columns, row, strict=True)) for row in rows]
    conn.exec_driver_sql(compiled.string, params)
