"""The catalog: SQL is the source of truth for assets, their embeddings and the change log.

One ``Catalog`` serves SQLite (WAL mode, the default) and PostgreSQL alike. Every write
runs in one transaction that first locks its collection's row, so the change log's
``seq`` values of a collection commit in order and a tailing reader never skips one.
"""

from __future__ import annotations

import datetime as dt
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
    select,
    update,
)
from sqlalchemy.engine import make_url

from latent.errors import AlreadyExists, DimensionMismatch, FailedPrecondition, NotFound
from latent.schema import Asset, Change, Collection, Direction, Embedding
from migrations import SCRIPT_LOCATION

IN_CHUNK = 500  # ids per IN (...) list: well under every backend's bound-parameter limit
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
    """Change-log entries after a ``seq``: ids removed, then ids and vectors added."""

    last_seq: int
    removed: np.ndarray  # embedding ids, int64
    added_ids: np.ndarray  # int64
    added_vectors: np.ndarray  # float32, (n, dim)


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
            command.upgrade(_alembic_config(conn), revision)

    def downgrade(self, revision: str) -> None:
        """Migrate the schema down to ``revision`` (``base`` drops everything)."""
        with self._migrate_lock, self._writer.begin() as conn:
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
        """Record a new mtime for a file whose content did not change."""
        with self._writer.begin() as conn:
            conn.execute(
                update(Asset)
                .where(Asset.collection_id == collection_id, Asset.uri == uri)
                .values(mtime_ns=mtime_ns)
            )

    def set_metadata(self, metadata: dict[int, dict[str, Any]]) -> None:
        """Replace the user metadata of assets (by asset id); vectors are untouched."""
        if not metadata:
            return
        with self._writer.begin() as conn:
            conn.execute(
                update(Asset).where(Asset.id == bindparam("b_id")),
                [{"b_id": k, "user_metadata": v} for k, v in metadata.items()],
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
        """Change-log entries after ``seq``, folded into removals and current additions.

        An id both added and removed in the range is only removed; an added id whose
        embedding is gone by now is skipped (a later delete entry covers it).
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
                final[r.embedding_id] = r.op
            wanted = [e for e, op in final.items() if op == "add"]
            found = (
                conn.execute(
                    select(Embedding.id, Embedding.vector, Embedding.dtype).where(
                        Embedding.id.in_(wanted)
                    )
                ).all()
                if wanted
                else []
            )
        removed = np.fromiter((e for e, op in final.items() if op == "delete"), dtype=np.int64)
        added_ids = np.fromiter((r.id for r in found), dtype=np.int64, count=len(found))
        vectors = decode_vectors(
            [r.vector for r in found], [r.dtype for r in found], collection.dim
        )
        return ChangeBatch(int(rows[-1].seq), removed, added_ids, vectors)

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
        stmt = (
            select(
                Embedding.id.label("embedding_id"),
                Embedding.segment_start,
                Embedding.segment_end,
                *_ASSET_COLUMNS,
            )
            .join(Asset, Asset.id == Embedding.asset_id)
            .join(Collection, Collection.id == Asset.collection_id)
            .where(Embedding.id.in_(list(embedding_ids)), Asset.state == "indexed")
        )
        with self.engine.connect() as conn:
            return {
                r.embedding_id: (_record(r), r.segment_start, r.segment_end)
                for r in conn.execute(stmt)
            }

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


_ASSET_COLUMNS = (*Asset.__table__.c, Collection.name.label("collection_name"))


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
