"""``Catalog``: the object callers hold, composed of the catalog's concerns over one database."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Engine

from latent.catalog.bulk import BulkImport, ImportCounts
from latent.catalog.changes import ChangeFeed
from latent.catalog.collections import Collections
from latent.catalog.directions import Directions
from latent.catalog.engine import Database, Migrations
from latent.catalog.jobs import Jobs
from latent.catalog.keys import ApiKeys
from latent.catalog.lifecycle import Lifecycle
from latent.catalog.options import IndexOptionsStore
from latent.catalog.reads import Hit, Reads
from latent.catalog.records import (
    AssetRecord,
    AssetWrite,
    ChangeBatch,
    CollectionInfo,
    DirectionRecord,
    FileState,
)
from latent.catalog.writes import Upserted, Writes
from latent.query.filters import Filter


class Catalog:
    """The catalog over one database: collections, assets, embeddings, change log.

    Each method hands over to the part that owns the concern (``Writes``, ``Reads``,
    ``ChangeFeed``, ...), where its full description lives; all parts share the engines.
    """

    def __init__(self, url: str, migrate: bool = True) -> None:
        """Open the catalog; an empty database is migrated to head.

        Raises:
            FailedPrecondition: the schema is older than this code and not empty.
        """
        self._db = Database.open(url)
        self._migrations = Migrations(self._db)
        self._collections = Collections(self._db)
        self._writes = Writes(self._db)
        self._feed = ChangeFeed(self._db)
        self._reads = Reads(self._db)
        self._directions = Directions(self._db)
        self._bulk = BulkImport(self._db)
        self._options = IndexOptionsStore(self._db)
        self._jobs = Jobs(self._db)
        self._keys = ApiKeys(self._db)
        self._lifecycle = Lifecycle(self._db)
        if migrate:
            try:
                self._migrations.ensure_head()
            except Exception:
                self._db.close()
                raise

    @property
    def url(self) -> str:
        """The database URL the catalog was opened with."""
        return self._db.url

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for reads; writes go through the catalog's methods)."""
        return self._db.engine

    @property
    def keys(self) -> ApiKeys:
        """The API keys: create, all, revoke, lookup, snapshot (see ``ApiKeys``)."""
        return self._keys

    def close(self) -> None:
        """Release pooled connections."""
        self._db.close()

    @property
    def jobs(self) -> Jobs:
        """The index jobs a server runs, with their progress (see ``latent.catalog.jobs``)."""
        return self._jobs

    # -- schema ---------------------------------------------------------------------------

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at (None when empty)."""
        return self._migrations.revision()

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema up to ``revision``."""
        self._migrations.upgrade(revision)

    def downgrade(self, revision: str) -> None:
        """Migrate the schema down to ``revision`` (``base`` drops everything)."""
        self._migrations.downgrade(revision)

    # -- collections ----------------------------------------------------------------------

    def ensure_collection(
        self, name: str, model_spec: str, dim: int, metric: str = "ip"
    ) -> CollectionInfo:
        """The collection, created for this model when missing (see ``Collections``)."""
        return self._collections.ensure_collection(name, model_spec, dim, metric)

    def create_collection(
        self, name: str, model_spec: str, dim: int, metric: str = "ip"
    ) -> CollectionInfo:
        """Create an empty collection; ``AlreadyExists`` when the name is taken (``Lifecycle``)."""
        return self._lifecycle.create_collection(name, model_spec, dim, metric)

    def delete_collection(self, name: str) -> CollectionInfo:
        """Delete a collection with everything in it, in one transaction (``Lifecycle``)."""
        return self._lifecycle.delete_collection(name)

    def collection(self, name: str) -> CollectionInfo:
        """A collection by name, with counts; ``NotFound`` when there is none."""
        return self._collections.collection(name)

    def find_collection(self, name: str) -> CollectionInfo | None:
        """A collection by name, with counts; None when there is none."""
        return self._collections.find_collection(name)

    def collections(self) -> list[CollectionInfo]:
        """Every collection with its asset counts by state, by name."""
        return self._collections.collections()

    def counts(self, collection_id: int) -> dict[str, int]:
        """Asset counts by state (every state present, zero when none)."""
        return self._collections.counts(collection_id)

    # -- writes -------------------------------------------------------------------------

    def commit(
        self, collection: CollectionInfo, writes: Iterable[AssetWrite], deletes: Iterable[str] = ()
    ) -> list[int]:
        """Write assets and vectors, delete by uri, in one transaction (see ``Writes``)."""
        return self._writes.commit(collection, writes, deletes)

    def touch(self, collection_id: int, uri: str, mtime_ns: int) -> None:
        """Record a new mtime for a file whose content did not change."""
        self._writes.touch(collection_id, uri, mtime_ns)

    def set_metadata(self, metadata: dict[int, dict[str, Any]]) -> None:
        """Replace the user metadata of assets (by asset id); vectors are untouched."""
        self._writes.set_metadata(metadata)

    def upsert(self, collection: CollectionInfo, write: AssetWrite) -> Upserted:
        """Write one asset as ``commit`` does, saying whether its uri was new (``Writes``)."""
        return self._writes.upsert(collection, write)

    def find_asset(self, collection_id: int, uri: str) -> int | None:
        """The id of the collection's asset with that uri; None when there is none."""
        return self._writes.find_asset(collection_id, uri)

    def delete_asset(self, asset_id: int) -> None:
        """Mark one asset deleted and drop its vectors, logged; ``NotFound`` if not live."""
        self._writes.delete_asset(asset_id)

    def update_metadata(self, asset_id: int, metadata: dict[str, Any], merge: bool) -> None:
        """Replace or merge one asset's user metadata, logged (see ``Writes``)."""
        self._writes.update_metadata(asset_id, metadata, merge)

    def import_vectors(
        self,
        collection: CollectionInfo,
        ids: Sequence[str],
        vectors: np.ndarray,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        row_offset: int = 0,
    ) -> ImportCounts:
        """Write a batch of external vectors in one transaction (see ``BulkImport``)."""
        return self._bulk.import_vectors(collection, ids, vectors, metadata, row_offset)

    # -- the change feed ------------------------------------------------------------------

    def head_seq(self, collection_id: int) -> int:
        """The newest change-log ``seq`` of a collection (0 when empty)."""
        return self._feed.head_seq(collection_id)

    def all_vectors(
        self, collection: CollectionInfo, chunk: int = 50_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every stored embedding of a collection as (ids, float32 vectors) chunks."""
        return self._feed.all_vectors(collection, chunk)

    def changes_since(
        self, collection: CollectionInfo, seq: int, limit: int = 100_000
    ) -> ChangeBatch:
        """Change-log entries after ``seq``, folded (see ``ChangeFeed``)."""
        return self._feed.changes_since(collection, seq, limit)

    # -- reads --------------------------------------------------------------------------

    def file_states(self, collection_id: int, uri_prefix: str = "") -> dict[str, FileState]:
        """Every asset of the collection whose uri starts with ``uri_prefix``, by uri."""
        return self._reads.file_states(collection_id, uri_prefix)

    def failed_assets(self, collection_id: int | None, limit: int) -> list[AssetRecord]:
        """At most ``limit`` failed assets (of one collection, or all), newest first."""
        return self._reads.failed_assets(collection_id, limit)

    def asset(self, asset_id: int) -> AssetRecord:
        """One asset by id; ``NotFound`` when there is none."""
        return self._reads.asset(asset_id)

    def assets(self, asset_ids: Sequence[int]) -> dict[int, AssetRecord]:
        """Assets by id (missing ids are left out)."""
        return self._reads.assets(asset_ids)

    def hits_for_embeddings(self, embedding_ids: Sequence[int]) -> dict[int, Hit]:
        """Map embedding ids to (asset, segment start, segment end) for indexed assets."""
        return self._reads.hits_for_embeddings(embedding_ids)

    def asset_vector(self, asset_id: int, dim: int) -> np.ndarray:
        """The unit-length mean of an asset's vectors; ``NotFound`` when it has none."""
        return self._reads.asset_vector(asset_id, dim)

    def matching_ids(
        self, collection: CollectionInfo, where: Filter | None, limit: int | None = None
    ) -> np.ndarray:
        """The ascending embedding ids of the collection's indexed assets matching ``where``."""
        return self._reads.matching_ids(collection, where, limit)

    def searchable(
        self, embedding_ids: Sequence[int], where: Filter | None = None
    ) -> dict[int, int]:
        """Asset id by embedding id, for those of ``embedding_ids`` that pass ``where``."""
        return self._reads.searchable(embedding_ids, where)

    # -- directions -----------------------------------------------------------------------

    def save_direction(
        self, collection: CollectionInfo, record: DirectionRecord
    ) -> DirectionRecord:
        """Store a new named direction; ``AlreadyExists`` when the name is taken."""
        return self._directions.save_direction(collection, record)

    def directions(self, collection: CollectionInfo) -> list[DirectionRecord]:
        """Every named direction of a collection, by name."""
        return self._directions.directions(collection)

    def direction(self, collection: CollectionInfo, name: str) -> DirectionRecord:
        """One named direction; ``NotFound`` when there is none."""
        return self._directions.direction(collection, name)

    def delete_direction(self, collection: CollectionInfo, name: str) -> None:
        """Delete a named direction; ``NotFound`` when there is none."""
        self._directions.delete_direction(collection, name)

    # -- index options --------------------------------------------------------------------

    def index_options(self, collection_id: int) -> dict[str, Any] | None:
        """The collection's index override (``IndexSpec`` fields), None when unset."""
        return self._options.index_options(collection_id)

    def set_index_options(self, name: str, options: dict[str, Any] | None) -> None:
        """Set a collection's index override, or clear it with None; ``NotFound`` when absent."""
        self._options.set_index_options(name, options)
