"""The catalog: SQL is the source of truth for assets, their embeddings and the change log.

One ``Catalog`` serves SQLite (WAL mode, the default) and PostgreSQL alike. Every write
runs in one transaction that first locks its collection's row, so the change log's
``seq`` values of a collection commit in order and a tailing reader never skips one.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.sql import Select

from latent.catalog.external import MEDIA_TYPE as EXTERNAL_MEDIA_TYPE
from latent.catalog.external import ImportCounts, check_batch, external_uri
from latent.catalog.schema import Asset, Change, Collection, Direction, Embedding, IndexOptions
from latent.catalog.where import where_clause
from latent.errors import AlreadyExists, DimensionMismatch, FailedPrecondition, NotFound
from latent.query.filters import Filter
from migrations import SCRIPT_LOCATION

IN_CHUNK = 500  # ids per IN (...) list: well under every backend's bound-parameter limit
MIGRATION_LOCK = 0x61737365747372  # PostgreSQL advisory lock key of schema migrations ("assetsr")
MATCH_CHUNK = 2000  # candidate ids per post-filter query (id-only, so larger chunks pay)
STORE_DTYPE = np.dtype("<f2")  # embeddings are stored as float16: half the bytes, ~1e-3 error


@dataclass(frozen=True)
class CollectionInfo:
    """A collection as the rest of the system sees it."""

    id: int
    name: str
    model_spec: str
    dim: int
    metric: str
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class FileState:
    """What the catalog knows of a file, for the indexer's diff."""

    asset_id: int
    size: int
    mtime_ns: int
    content_hash: str | None
    state: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AssetRecord:
    """A full asset row."""

    id: int
    collection: str
    uri: str
    content_hash: str | None
    media_type: str
    size: int
    mtime_ns: int
    width: int | None
    height: int | None
    state: str
    error: str | None
    metadata: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass
class AssetWrite:
    """An asset to insert or replace, with its vectors (none for a failed file)."""

    uri: str
    media_type: str
    size: int
    mtime_ns: int
    content_hash: str | None
    state: str = "indexed"
    width: int | None = None
    height: int | None = None
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    vectors: np.ndarray | None = None  # shape (n, dim)
    segments: Sequence[tuple[float | None, float | None]] | None = None


@dataclass(frozen=True)
class DirectionRecord:
    """A named direction: its raw vector (not normalised), norm, examples and constraints."""

    name: str
    vector: np.ndarray
    norm: float
    examples: dict[str, Any]
    orthogonal_to: tuple[str, ...] = ()
    created_at: dt.datetime | None = None


@dataclass(frozen=True)
class ChangeBatch:
    """Change-log entries after a ``seq``: ids removed, then ids and vectors added.

    ``updated`` holds embeddings whose asset row changed (metadata, mtime) while the
    vector stayed: nothing for the index, but a cached copy of the asset is stale.
    """

    last_seq: int
    removed: np.ndarray  # embedding ids, int64
    added_ids: np.ndarray  # int64
    added_vectors: np.ndarray  # float32, (n, dim)
    updated: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def encode_vector(vector: np.ndarray) -> bytes:
    """Serialise one vector for the ``embeddings.vector`` blob."""
    return np.asarray(vector, dtype=STORE_DTYPE).tobytes()


def decode_vectors(blobs: Sequence[bytes], dtypes: Sequence[str], dim: int) -> np.ndarray:
    """Deserialise blobs into a float32 matrix of unit rows, shape (len(blobs), dim)."""
    out = np.empty((len(blobs), dim), dtype=np.float32)
    for i, (blob, dtype) in enumerate(zip(blobs, dtypes, strict=True)):
        out[i] = np.frombuffer(blob, dtype=np.dtype(dtype))
    # float16 rounding leaves norms of 1 +- 1e-4: re-normalise so scores are true cosines.
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level; SQLAlchemy's "begin" hook emits BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged commit survives a crash
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the lock up front: a deferred read-then-write would fail with
    # SQLITE_BUSY instead of waiting when another process writes.
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str) -> Engine:
    """Create the engine for a catalog URL, with SQLite set to WAL mode."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)


def _lock_migrations(conn: Connection) -> None:
    """Serialise migrations across processes (SQLite's BEGIN IMMEDIATE already does).

    Processes started together on an empty PostgreSQL database (the service and an
    indexer job) would each create the tables; the second now waits for the first and
    then finds the schema at head. Alembic reads the revision after this lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))


def _alembic_config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["connection"] = conn
    return cfg


class Catalog:
    """The catalog over one database: collections, assets, embeddings, change log."""

    def __init__(self, url: str, migrate: bool = True) -> None:
        """Open the catalog; an empty database is migrated to head.

        Raises:
            FailedPrecondition: the schema is older than this code and not empty.
        """
        self.url = url
        self.engine = make_engine(url)
        self._writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._migrate_lock = threading.Lock()
        if migrate:
            try:
                self._ensure_schema()
            except Exception:
                self.engine.dispose()
                raise

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    # -- schema -------------------------------------------------------------------------

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at (None when empty)."""
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema up to ``revision``."""
        with self._migrate_lock, self._writer.begin() as conn:
            _lock_migrations(conn)
            command.upgrade(_alembic_config(conn), revision)

    def downgrade(self, revision: str) -> None:
        """Migrate the schema down to ``revision`` (``base`` drops everything)."""
        with self._migrate_lock, self._writer.begin() as conn:
            _lock_migrations(conn)
            command.downgrade(_alembic_config(conn), revision)

    def _ensure_schema(self) -> None:
        current = self.schema_revision()
        head = ScriptDirectory(SCRIPT_LOCATION).get_current_head()
        if current is None:
            self.upgrade()
        elif current != head:
            raise FailedPrecondition(
                f"catalog schema is at revision {current}, this version needs {head}: "
                "run `assetsearch db upgrade`"
            )

    # -- collections -------------------------------------------------------------------

    def ensure_collection(
        self, name: str, model_spec: str, dim: int, metric: str = "ip"
    ) -> CollectionInfo:
        """Return the collection, creating it for this model if it does not exist.

        Raises:
            FailedPrecondition: it exists with another model (one model per collection).
        """
        with self._writer.begin() as conn:
            row = conn.execute(select(Collection).where(Collection.name == name)).first()
            if row is None:
                conn.execute(
                    insert(Collection).values(
                        name=name, model_spec=model_spec, dim=dim, metric=metric
                    )
                )
                row = conn.execute(select(Collection).where(Collection.name == name)).one()
        info = CollectionInfo(row.id, row.name, row.model_spec, row.dim, row.metric)
        if info.model_spec != model_spec or info.dim != dim:
            raise FailedPrecondition(
                f"collection {name!r} holds vectors of model {info.model_spec!r} ({info.dim}-d); "
                f"refusing {model_spec!r} ({dim}-d). Use another --collection for another model."
            )
        return info

    def collection(self, name: str) -> CollectionInfo:
        """Look a collection up by name.

        Raises:
            NotFound: no collection has that name.
        """
        with self.engine.connect() as conn:
            row = conn.execute(select(Collection).where(Collection.name == name)).first()
        if row is None:
            raise NotFound(f"collection {name!r} does not exist (see `assetsearch status`)")
        return CollectionInfo(
            row.id, row.name, row.model_spec, row.dim, row.metric, self.counts(row.id)
        )

    def find_collection(self, name: str) -> CollectionInfo | None:
        """Like ``collection`` but None when it does not exist."""
        try:
            return self.collection(name)
        except NotFound:
            return None

    def collections(self) -> list[CollectionInfo]:
        """Every collection with its asset counts by state."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(Collection).order_by(Collection.name)).all()
        return [
            CollectionInfo(r.id, r.name, r.model_spec, r.dim, r.metric, self.counts(r.id))
            for r in rows
        ]

    def counts(self, collection_id: int) -> dict[str, int]:
        """Asset counts by state (every state present, zero when none)."""
        stmt = (
            select(Asset.state, func.count())
            .where(Asset.collection_id == collection_id)
            .group_by(Asset.state)
        )
        with self.engine.connect() as conn:
            found = {state: int(n) for state, n in conn.execute(stmt)}
        return {state: found.get(state, 0) for state in ("indexed", "failed", "deleted")}

    # -- the indexer's side --------------------------------------------------------------

    def file_states(self, collection_id: int, uri_prefix: str = "") -> dict[str, FileState]:
        """Every asset of the collection whose uri starts with ``uri_prefix``."""
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
        with self.engine.connect() as conn:
            return {
                r.uri: FileState(
                    r.id, r.size, r.mtime_ns, r.content_hash, r.state, r.user_metadata or {}
                )
                for r in conn.execute(stmt)
            }

    def touch(self, collection_id: int, uri: str, mtime_ns: int) -> None:
        """Record a new mtime for a file whose content did not change (logged as an update)."""
        with self._writer.begin() as conn:
            self._lock_collection(conn, collection_id)
            row = conn.execute(
                update(Asset)
                .where(Asset.collection_id == collection_id, Asset.uri == uri)
                .values(mtime_ns=mtime_ns)
                .returning(Asset.id)
            ).first()
            if row is not None:
                self._log_updates(conn, [row.id])

    def set_metadata(self, metadata: dict[int, dict[str, Any]]) -> None:
        """Replace the user metadata of assets (by asset id); vectors are untouched.

        Each affected embedding gets an ``update`` change-log entry, so servers that
        cache asset rows drop their copies.
        """
        if not metadata:
            return
        asset_ids = sorted(metadata)
        with self._writer.begin() as conn:
            owners = self._collections_of(conn, asset_ids)
            for collection_id in sorted(set(owners.values())):  # one lock order: no deadlock
                self._lock_collection(conn, collection_id)
            conn.execute(
                update(Asset).where(Asset.id == bindparam("b_id")),
                [{"b_id": k, "user_metadata": v} for k, v in metadata.items()],
            )
            self._log_updates(conn, asset_ids)

    def _collections_of(self, conn: Connection, asset_ids: Sequence[int]) -> dict[int, int]:
        found: dict[int, int] = {}
        for start in range(0, len(asset_ids), IN_CHUNK):
            stmt = select(Asset.id, Asset.collection_id).where(
                Asset.id.in_(asset_ids[start : start + IN_CHUNK])
            )
            found.update({r.id: r.collection_id for r in conn.execute(stmt)})
        return found

    def _log_updates(self, conn: Connection, asset_ids: Sequence[int]) -> None:
        """Log an ``update`` for every embedding of the assets (their rows changed)."""
        for start in range(0, len(asset_ids), IN_CHUNK):
            vectors = select(
                Embedding.collection_id, literal("update"), Embedding.id, Embedding.asset_id
            ).where(Embedding.asset_id.in_(asset_ids[start : start + IN_CHUNK]))
            conn.execute(
                insert(Change).from_select(
                    ["collection_id", "op", "embedding_id", "asset_id"], vectors
                )
            )

    def commit(
        self, collection: CollectionInfo, writes: Iterable[AssetWrite], deletes: Iterable[str] = ()
    ) -> list[int]:
        """Write assets, their vectors and change-log rows in one transaction.

        A write replaces any earlier asset with the same uri (its old vectors are logged
        as deleted; of two writes of one uri the last wins); a delete marks the asset
        ``deleted`` and drops its vectors. The work is a handful of set-wise statements
        per call, not per asset.

        Returns:
            The asset ids of ``writes``, in order.

        Raises:
            DimensionMismatch: a vector's dimension is not the collection's.
        """
        writes = list(writes)
        for w in writes:
            if w.vectors is not None and (
                w.vectors.ndim != 2 or w.vectors.shape[1] != collection.dim
            ):
                raise DimensionMismatch(
                    f"{w.uri}: vectors of shape {w.vectors.shape}, collection "
                    f"{collection.name!r} is {collection.dim}-d"
                )
        deletes = list(deletes)
        with self._writer.begin() as conn:
            self._lock_collection(conn, collection.id)
            ids = self._write_assets(conn, collection.id, writes) if writes else {}
            if deletes:
                self._delete_assets(conn, collection.id, deletes)
        return [ids[w.uri] for w in writes]

    def _lock_collection(self, conn: Connection, collection_id: int) -> None:
        # FOR UPDATE is a no-op on SQLite, where BEGIN IMMEDIATE already serialises writers.
        conn.execute(select(Collection.id).where(Collection.id == collection_id).with_for_update())

    def _asset_ids(
        self, conn: Connection, collection_id: int, uris: Sequence[str]
    ) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(uris), IN_CHUNK):
            stmt = select(Asset.uri, Asset.id).where(
                Asset.collection_id == collection_id, Asset.uri.in_(uris[start : start + IN_CHUNK])
            )
            found.update({r.uri: r.id for r in conn.execute(stmt)})
        return found

    def _drop_vectors(self, conn: Connection, collection_id: int, asset_ids: Sequence[int]) -> None:
        """Delete the assets' embeddings and log each as deleted."""
        for start in range(0, len(asset_ids), IN_CHUNK):
            chunk = asset_ids[start : start + IN_CHUNK]
            old = conn.execute(
                select(Embedding.id, Embedding.asset_id).where(Embedding.asset_id.in_(chunk))
            ).all()
            if not old:
                continue
            conn.execute(delete(Embedding).where(Embedding.asset_id.in_(chunk)))
            conn.execute(
                insert(Change),
                [
                    dict(collection_id=collection_id, op="delete", embedding_id=e, asset_id=a)
                    for e, a in old
                ],
            )

    def _write_assets(
        self, conn: Connection, collection_id: int, writes: list[AssetWrite]
    ) -> dict[str, int]:
        latest = {w.uri: w for w in writes}
        ids = self._asset_ids(conn, collection_id, list(latest))
        self._drop_vectors(conn, collection_id, list(ids.values()))
        if ids:
            conn.execute(
                update(Asset).where(Asset.id == bindparam("b_id")).values(updated_at=func.now()),
                [{"b_id": ids[uri], **_asset_values(w)} for uri, w in latest.items() if uri in ids],
            )
        new = [w for uri, w in latest.items() if uri not in ids]
        if new:
            rows = conn.execute(
                insert(Asset).returning(Asset.id, Asset.uri, sort_by_parameter_order=True),
                [dict(collection_id=collection_id, uri=w.uri, **_asset_values(w)) for w in new],
            ).all()
            ids.update({r.uri: r.id for r in rows})
        self._insert_vectors(conn, collection_id, [(ids[uri], w) for uri, w in latest.items()])
        return ids

    def _insert_vectors(
        self, conn: Connection, collection_id: int, owned: list[tuple[int, AssetWrite]]
    ) -> None:
        rows = []
        for asset_id, w in owned:
            if w.vectors is None or not len(w.vectors):
                continue
            segments = w.segments or [(None, None)] * len(w.vectors)
            rows += [
                dict(
                    collection_id=collection_id,
                    asset_id=asset_id,
                    vector=encode_vector(v),
                    dtype=STORE_DTYPE.str,
                    segment_start=start,
                    segment_end=end,
                )
                for v, (start, end) in zip(w.vectors, segments, strict=True)
            ]
        if not rows:
            return
        added = conn.execute(
            insert(Embedding).returning(
                Embedding.id, Embedding.asset_id, sort_by_parameter_order=True
            ),
            rows,
        ).all()
        conn.execute(
            insert(Change),
            [
                dict(collection_id=collection_id, op="add", embedding_id=e, asset_id=a)
                for e, a in added
            ],
        )

    def _delete_assets(self, conn: Connection, collection_id: int, uris: list[str]) -> None:
        ids = list(self._asset_ids(conn, collection_id, uris).values())
        self._drop_vectors(conn, collection_id, ids)
        for start in range(0, len(ids), IN_CHUNK):
            conn.execute(
                update(Asset)
                .where(Asset.id.in_(ids[start : start + IN_CHUNK]))
                .values(state="deleted", error=None, updated_at=func.now())
            )

    # -- the service's side -------------------------------------------------------------

    def head_seq(self, collection_id: int) -> int:
        """The newest change-log ``seq`` of a collection (0 when empty)."""
        stmt = select(func.max(Change.seq)).where(Change.collection_id == collection_id)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar() or 0)

    def all_vectors(
        self, collection: CollectionInfo, chunk: int = 50_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every stored embedding of a collection as (ids, float32 vectors) chunks."""
        last = 0
        while True:
            stmt = (
                select(Embedding.id, Embedding.vector, Embedding.dtype)
                .where(Embedding.collection_id == collection.id, Embedding.id > last)
                .order_by(Embedding.id)
                .limit(chunk)
            )
            with self.engine.connect() as conn:
                rows = conn.execute(stmt).all()
            if not rows:
                return
            ids = np.fromiter((r.id for r in rows), dtype=np.int64, count=len(rows))
            yield (
                ids,
                decode_vectors([r.vector for r in rows], [r.dtype for r in rows], collection.dim),
            )
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
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
            if not rows:
                empty = np.zeros(0, dtype=np.int64)
                return ChangeBatch(seq, empty, empty, np.zeros((0, collection.dim), np.float32))
            final: dict[int, str] = {}
            for r in rows:
                if r.op != "update" or final.get(r.embedding_id) != "add":
                    final[r.embedding_id] = r.op
            wanted = [e for e, op in final.items() if op == "add"]
            found: list[Any] = []
            for start in range(0, len(wanted), IN_CHUNK):
                chunk = wanted[start : start + IN_CHUNK]
                found.extend(
                    conn.execute(
                        select(Embedding.id, Embedding.vector, Embedding.dtype).where(
                            Embedding.id.in_(chunk)
                        )
                    ).all()
                )

        def ids_of(op: str) -> np.ndarray:
            return np.fromiter((e for e, o in final.items() if o == op), dtype=np.int64)

        added_ids = np.fromiter((r.id for r in found), dtype=np.int64, count=len(found))
        vectors = decode_vectors(
            [r.vector for r in found], [r.dtype for r in found], collection.dim
        )
        return ChangeBatch(
            int(rows[-1].seq), ids_of("delete"), added_ids, vectors, updated=ids_of("update")
        )

    def save_direction(
        self, collection: CollectionInfo, record: DirectionRecord
    ) -> DirectionRecord:
        """Store a new named direction.

        Raises:
            AlreadyExists: the collection has a direction of that name.
        """
        values = dict(
            collection_id=collection.id,
            name=record.name,
            vector=np.asarray(record.vector, dtype="<f4").tobytes(),
            norm=record.norm,
            examples=record.examples,
            orthogonal_to=list(record.orthogonal_to),
        )
        with self._writer.begin() as conn:
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
        with self.engine.connect() as conn:
            return [_direction(r) for r in conn.execute(stmt)]

    def direction(self, collection: CollectionInfo, name: str) -> DirectionRecord:
        """One named direction.

        Raises:
            NotFound: the collection has no direction of that name.
        """
        stmt = select(Direction).where(
            Direction.collection_id == collection.id, Direction.name == name
        )
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            raise NotFound(f"direction {name!r} does not exist in collection {collection.name!r}")
        return _direction(row)

    def delete_direction(self, collection: CollectionInfo, name: str) -> None:
        """Delete a named direction.

        Raises:
            NotFound: the collection has no direction of that name.
        """
        stmt = delete(Direction).where(
            Direction.collection_id == collection.id, Direction.name == name
        )
        with self._writer.begin() as conn:
            if conn.execute(stmt).rowcount == 0:
                raise NotFound(
                    f"direction {name!r} does not exist in collection {collection.name!r}"
                )

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
        with self.engine.connect() as conn:
            return {r.id: _record(r) for r in conn.execute(stmt)}

    def hits_for_embeddings(
        self, embedding_ids: Sequence[int]
    ) -> dict[int, tuple[AssetRecord, float | None, float | None]]:
        """Map embedding ids to (asset, segment start, segment end) for indexed assets."""
        if len(embedding_ids) > IN_CHUNK:
            merged: dict[int, tuple[AssetRecord, float | None, float | None]] = {}
            for start in range(0, len(embedding_ids), IN_CHUNK):
                merged.update(self.hits_for_embeddings(embedding_ids[start : start + IN_CHUNK]))
            return merged
        if not embedding_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(_HITS, {"ids": list(embedding_ids)})
            return {r.embedding_id: (_record(r), r.segment_start, r.segment_end) for r in rows}

    def asset_vector(self, asset_id: int, dim: int) -> np.ndarray:
        """The unit-length mean of an asset's vectors (its one vector for an image).

        Raises:
            NotFound: the asset does not exist or has no vectors (failed or deleted).
        """
        stmt = select(Embedding.vector, Embedding.dtype).where(Embedding.asset_id == asset_id)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        if not rows:
            state = self.asset(asset_id).state
            raise NotFound(f"asset {asset_id} has no embedding (state {state})")
        vectors = decode_vectors([r.vector for r in rows], [r.dtype for r in rows], dim)
        mean = vectors.mean(axis=0)
        return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)

    # -- filtered search and bulk import ---------------------------------------------------

    def _searchable(
        self, collection_id: int | None, where: Filter | None, *columns: Any
    ) -> Select[Any]:
        """Stored vectors of indexed assets (of a collection) that match ``where``."""
        stmt = (
            select(*columns)
            .select_from(Embedding)
            .join(Asset, Asset.id == Embedding.asset_id)
            .where(Asset.state == "indexed")
        )
        if collection_id is not None:
            stmt = stmt.where(Embedding.collection_id == collection_id)
        if where is not None and not where.is_empty():
            stmt = stmt.where(where_clause(where, self.engine.dialect.name))
        return stmt

    def count_matching(self, collection: CollectionInfo, where: Filter | None) -> int:
        """How many vectors of the collection's indexed assets match the filter."""
        stmt = self._searchable(collection.id, where, func.count())
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar() or 0)

    def matching_ids(
        self, collection: CollectionInfo, where: Filter | None, limit: int | None = None
    ) -> np.ndarray:
        """The embedding (FAISS) ids of those vectors, ascending, as int64.

        With ``limit``, at most that many (the scan stops there).
        """
        stmt = self._searchable(collection.id, where, Embedding.id).order_by(Embedding.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
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
        with self.engine.connect() as conn:
            for start in range(0, len(embedding_ids), MATCH_CHUNK):
                chunk = list(embedding_ids[start : start + MATCH_CHUNK])
                stmt = self._searchable(None, where, Embedding.id, Embedding.asset_id).where(
                    Embedding.id.in_(chunk)
                )
                out.update({int(e): int(a) for e, a in conn.execute(stmt)})
        return out

    def import_vectors(
        self,
        collection: CollectionInfo,
        ids: Sequence[str],
        vectors: np.ndarray,
        metadata: Sequence[dict[str, Any] | None] | None = None,
        row_offset: int = 0,
    ) -> ImportCounts:
        """Write a batch of externally computed vectors in one transaction.

        Row i becomes the asset ``vector:ids[i]`` (media type ``vector``) with one unit
        vector; an id already there gets its vector replaced, and its metadata when
        ``metadata[i]`` is not None (None keeps it; a new asset gets ``{}``). The batch
        is checked before anything is written, and the writes are a few set-wise
        statements, so a rejected batch leaves no trace.

        Raises:
            DimensionMismatch: the vectors are not of the collection's dimension.
            InvalidArgument: no rows, a count mismatch, a bad or repeated id, a NaN,
                infinite or zero row (row numbers count from ``row_offset``).
        """
        if vectors.ndim == 2 and vectors.shape[1] != collection.dim:
            raise DimensionMismatch(
                f"the vectors are {vectors.shape[1]}-d; collection {collection.name!r} "
                f"({collection.model_spec}) is {collection.dim}-d"
            )
        unit = check_batch(ids, vectors, metadata, row_offset)
        blobs = [row.tobytes() for row in unit.astype(STORE_DTYPE)]
        uris = [external_uri(i) for i in ids]
        rows = [(u, None if metadata is None else metadata[i]) for i, u in enumerate(uris)]
        with self._writer.begin() as conn:
            self._lock_collection(conn, collection.id)
            existing = self._asset_ids(conn, collection.id, uris)
            self._replace_external(conn, collection.id, existing, rows)
            created = self._insert_external_assets(
                conn, collection.id, [r for r in rows if r[0] not in existing]
            )
            owners = [existing.get(u) or created[u] for u in uris]
            self._insert_external_vectors(conn, collection.id, owners, blobs)
        return ImportCounts(added=len(uris) - len(existing), replaced=len(existing))

    def _replace_external(
        self,
        conn: Connection,
        collection_id: int,
        existing: dict[str, int],
        rows: list[tuple[str, dict[str, Any] | None]],
    ) -> None:
        """Drop the old vectors of re-imported ids and mark their assets indexed again."""
        if not existing:
            return
        self._drop_vectors(conn, collection_id, list(existing.values()))
        revive = (
            update(Asset)
            .where(Asset.id == bindparam("b_id"))
            .values(state="indexed", error=None, updated_at=func.now())
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

    def _insert_external_assets(
        self, conn: Connection, collection_id: int, rows: list[tuple[str, dict[str, Any] | None]]
    ) -> dict[str, int]:
        """Insert new assets and read their ids back (no per-row RETURNING: far faster)."""
        if not rows:
            return {}
        # Under the collection lock, every asset of this collection above the current
        # maximum id is one inserted here (SQLite rowids and PostgreSQL sequences grow).
        before = conn.execute(select(func.max(Asset.id))).scalar() or 0
        empty = json.dumps({})
        _bulk_insert(
            conn,
            Asset.__table__,
            ("collection_id", "uri", "media_type", "size", "mtime_ns", "state", "user_metadata"),
            [
                (
                    collection_id,
                    uri,
                    EXTERNAL_MEDIA_TYPE,
                    0,
                    0,
                    "indexed",
                    json.dumps(meta) if meta else empty,
                )
                for uri, meta in rows
            ],
        )
        stmt = select(Asset.uri, Asset.id).where(
            Asset.collection_id == collection_id, Asset.id > before
        )
        return dict(conn.execute(stmt).all())

    def _insert_external_vectors(
        self, conn: Connection, collection_id: int, owners: list[int], blobs: list[bytes]
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
        added = (
            select(Embedding.collection_id, literal("add"), Embedding.id, Embedding.asset_id)
            .where(Embedding.collection_id == collection_id, Embedding.id > before)
            .order_by(Embedding.id)
        )
        conn.execute(
            insert(Change).from_select(["collection_id", "op", "embedding_id", "asset_id"], added)
        )

    # -- index options (per-collection index override) -------------------------------------

    def index_options(self, collection_id: int) -> dict[str, Any] | None:
        """The collection's index override (``IndexSpec`` fields), None when unset."""
        stmt = select(IndexOptions.options).where(IndexOptions.collection_id == collection_id)
        with self.engine.connect() as conn:
            value = conn.execute(stmt).scalar()
        return dict(value) if value else None

    def set_index_options(self, name: str, options: dict[str, Any] | None) -> None:
        """Set a collection's index override, or clear it with None.

        Raises:
            NotFound: no collection has that name.
        """
        with self._writer.begin() as conn:
            collection_id = conn.execute(
                select(Collection.id).where(Collection.name == name)
            ).scalar()
            if collection_id is None:
                raise NotFound(f"collection {name!r} does not exist (see `assetsearch status`)")
            conn.execute(delete(IndexOptions).where(IndexOptions.collection_id == collection_id))
            if options:
                row = {"collection_id": collection_id, "options": options}
                conn.execute(insert(IndexOptions).values(**row))


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
    .where(Embedding.id.in_(bindparam("ids", expanding=True)), Asset.state == "indexed")
)


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


def _direction(row: Any) -> DirectionRecord:
    return DirectionRecord(
        name=row.name,
        vector=np.frombuffer(row.vector, dtype="<f4").copy(),
        norm=row.norm,
        examples=row.examples,
        orthogonal_to=tuple(row.orthogonal_to),
        created_at=row.created_at,
    )


def _asset_values(w: AssetWrite) -> dict[str, Any]:
    return dict(
        content_hash=w.content_hash,
        media_type=w.media_type,
        size=w.size,
        mtime_ns=w.mtime_ns,
        width=w.width,
        height=w.height,
        state=w.state,
        error=w.error,
        user_metadata=w.metadata,
    )


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
