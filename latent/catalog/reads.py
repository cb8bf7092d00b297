"""Reads of assets: by id, by embedding (the hits of a search), by filter, file states, failures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import bindparam, select
from sqlalchemy.sql import Select

from latent.catalog.engine import Database, in_chunks
from latent.catalog.records import AssetRecord, CollectionInfo, FileState, decode_rows
from latent.catalog.schema import FAILED, INDEXED, Asset, Collection, Embedding
from latent.catalog.where import where_clause
from latent.errors import NotFound
from latent.linalg import unit_or_zero
from latent.query.filters import Filter

MATCH_CHUNK = 2000  # candidate ids per post-filter query (id-only, so larger chunks pay)
_ASSET_COLUMNS = (*Asset.__table__.c, Collection.name.label("collection_name"))

# Built once: constructing the statement per call cost as much as running it (the
# search hot path joins every hit through it).
_HITS = (
    select(
        Embedding.id.label("embedding_id"),
        Embedding.segment_start,
        Embedding.segment_end,
        *_ASSET_COLUMNS,
    )
    .join(Asset, Asset.id == Embedding.asset_id)
    .join(Collection, Collection.id == Asset.collection_id)
    .where(Embedding.id.in_(bindparam("ids", expanding=True)), Asset.state == INDEXED)
)

Hit = tuple[AssetRecord, float | None, float | None]
"""An embedding's asset and the start and end of its segment (None for an image)."""


class Reads:
    """Looking assets up."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def file_states(self, collection_id: int, uri_prefix: str = "") -> dict[str, FileState]:
        """Every asset of the collection whose uri starts with ``uri_prefix``, by uri."""
        stmt = select(
            Asset.uri,
            Asset.id,
            Asset.size,
            Asset.mtime_ns,
            Asset.content_hash,
            Asset.state,
            Asset.user_metadata,
        ).where(Asset.collection_id == collection_id)
        if uri_prefix:
            stmt = stmt.where(Asset.uri.startswith(uri_prefix, autoescape=True))
        with self._db.engine.connect() as conn:
            return {
                r.uri: FileState(
                    r.id, r.size, r.mtime_ns, r.content_hash, r.state, r.user_metadata or {}
                )
                for r in conn.execute(stmt)
            }

    def failed_assets(self, collection_id: int | None, limit: int) -> list[AssetRecord]:
        """The failed assets, newest first, with the reason of each in ``error``.

        Args:
            collection_id: Only this collection's; None for every collection's.
            limit: At most this many.

        Returns:
            The records, by last update descending (ties: the larger id first).
        """
        stmt = (
            select(*_ASSET_COLUMNS)
            .join(Collection, Collection.id == Asset.collection_id)
            .where(Asset.state == FAILED)
            .order_by(Asset.updated_at.desc(), Asset.id.desc())
            .limit(limit)
        )
        if collection_id is not None:
            stmt = stmt.where(Asset.collection_id == collection_id)
        with self._db.engine.connect() as conn:
            return [_record(r) for r in conn.execute(stmt)]

    def asset(self, asset_id: int) -> AssetRecord:
        """One asset by id.

        Raises:
            NotFound: no asset has that id.
        """
        records = self.assets([asset_id])
        if asset_id not in records:
            raise NotFound(f"asset {asset_id} does not exist")
        return records[asset_id]

    def assets(self, asset_ids: Sequence[int]) -> dict[int, AssetRecord]:
        """Assets by id (missing ids are left out)."""
        if not asset_ids:
            return {}
        stmt = (
            select(*_ASSET_COLUMNS)
            .join(Collection, Collection.id == Asset.collection_id)
            .where(Asset.id.in_(list(asset_ids)))
        )
        with self._db.engine.connect() as conn:
            return {r.id: _record(r) for r in conn.execute(stmt)}

    def hits_for_embeddings(self, embedding_ids: Sequence[int]) -> dict[int, Hit]:
        """Map embedding ids to (asset, segment start, segment end) for indexed assets."""
        out: dict[int, Hit] = {}
        if not embedding_ids:
            return out
        with self._db.engine.connect() as conn:
            for chunk in in_chunks(embedding_ids):
                rows = conn.execute(_HITS, {"ids": list(chunk)})
                out.update(
                    {r.embedding_id: (_record(r), r.segment_start, r.segment_end) for r in rows}
                )
        return out

    def asset_vector(self, asset_id: int, dim: int) -> np.ndarray:
        """The unit-length mean of an asset's vectors (its one vector for an image).

        Raises:
            NotFound: the asset does not exist or has no vectors (failed or deleted).
        """
        stmt = select(Embedding.vector, Embedding.dtype).where(Embedding.asset_id == asset_id)
        with self._db.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        if not rows:
            state = self.asset(asset_id).state
            raise NotFound(f"asset {asset_id} has no embedding (state {state})")
        return unit_or_zero(decode_rows(rows, dim).mean(axis=0)).astype(np.float32)

    def matching_ids(
        self, collection: CollectionInfo, where: Filter | None, limit: int | None = None
    ) -> np.ndarray:
        """The embedding (FAISS) ids of the collection's indexed assets matching the filter.

        Ascending, as int64; with ``limit``, at most that many (the scan stops there).
        """
        stmt = self._searchable(collection.id, where, Embedding.id).order_by(Embedding.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._db.engine.connect() as conn:
            return np.array(conn.execute(stmt).scalars().all(), dtype=np.int64)

    def searchable(
        self, embedding_ids: Sequence[int], where: Filter | None = None
    ) -> dict[int, int]:
        """Which of ``embedding_ids`` belong to indexed assets matching the filter.

        The post-filter of a search: one id-only query per chunk of candidates.

        Returns:
            Asset id by embedding id, for the ids that pass.
        """
        out: dict[int, int] = {}
        with self._db.engine.connect() as conn:
            for chunk in in_chunks(embedding_ids, MATCH_CHUNK):
                stmt = self._searchable(None, where, Embedding.id, Embedding.asset_id).where(
                    Embedding.id.in_(list(chunk))
                )
                out.update({int(e): int(a) for e, a in conn.execute(stmt)})
        return out

    def _searchable(
        self, collection_id: int | None, where: Filter | None, *columns: Any
    ) -> Select[Any]:
        """Stored vectors of indexed assets (of a collection) that match ``where``."""
        stmt = (
            select(*columns)
            .select_from(Embedding)
            .join(Asset, Asset.id == Embedding.asset_id)
            .where(Asset.state == INDEXED)
        )
        if collection_id is not None:
            stmt = stmt.where(Embedding.collection_id == collection_id)
        if where is not None and not where.is_empty():
            stmt = stmt.where(where_clause(where, self._db.dialect))
        return stmt


def _record(a: Any) -> AssetRecord:
    return AssetRecord(
        id=a.id,
        collection=a.collection_name,
        uri=a.uri,
        content_hash=a.content_hash,
        media_type=a.media_type,
        size=a.size,
        mtime_ns=a.mtime_ns,
        width=a.width,
        height=a.height,
        state=a.state,
        error=a.error,
        metadata=a.user_metadata or {},
        created_at=a.created_at,
        updated_at=a.updated_at,
    )
