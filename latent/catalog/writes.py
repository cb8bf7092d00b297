"""Writes of assets: with their vectors (the indexer's and uploads), deletes, touches, metadata.

Every write is one transaction that first locks its collection's row and logs each
change of an embedding, so the log's ``seq`` values of a collection commit in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from latent.catalog.changes import drop_vectors, log, log_updates
from latent.catalog.collections import lock_collection
from latent.catalog.engine import Database, in_chunks
from latent.catalog.records import STORE_DTYPE, AssetWrite, CollectionInfo, encode_vector
from latent.catalog.schema import DELETED, Asset, Embedding
from latent.errors import DimensionMismatch, NotFound


@dataclass(frozen=True)
class Upserted:
    """What ``Writes.upsert`` did: the asset's id, and whether its uri was new.

    ``created`` is False when a live asset (indexed or failed) had the uri and was
    replaced; a uri whose asset was deleted counts as new (its row and id are reused).
    """

    asset_id: int
    created: bool


def asset_ids(conn: Connection, collection_id: int, uris: Sequence[str]) -> dict[str, int]:
    """The ids of the collection's assets with those uris (absent ones are left out)."""
    found: dict[str, int] = {}
    for chunk in in_chunks(uris):
        stmt = select(Asset.uri, Asset.id).where(
            Asset.collection_id == collection_id, Asset.uri.in_(chunk)
        )
        found.update({r.uri: r.id for r in conn.execute(stmt)})
    return found


class Writes:
    """Writing assets, vectors and their change-log entries."""

    def __init__(self, db: Database) -> None:
        self._db = db

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
            _check_dim(collection, w)
        deletes = list(deletes)
        with self._db.writer.begin() as conn:
            lock_collection(conn, collection.id)
            ids = _write_assets(conn, collection.id, writes) if writes else {}
            if deletes:
                _delete_assets(conn, collection.id, deletes)
        return [ids[w.uri] for w in writes]

    def upsert(self, collection: CollectionInfo, write: AssetWrite) -> Upserted:
        """Write one asset as ``commit`` does (same statements, one transaction).

        Returns:
            The asset id, and whether its uri was new.

        Raises:
            DimensionMismatch: a vector's dimension is not the collection's.
        """
        _check_dim(collection, write)
        with self._db.writer.begin() as conn:
            lock_collection(conn, collection.id)
            before = conn.execute(
                select(Asset.state).where(
                    Asset.collection_id == collection.id, Asset.uri == write.uri
                )
            ).scalar()
            ids = _write_assets(conn, collection.id, [write])
        return Upserted(ids[write.uri], before is None or before == DELETED)

    def find_asset(self, collection_id: int, uri: str) -> int | None:
        """The id of the collection's asset with that uri (deleted or not); None when none."""
        with self._db.engine.connect() as conn:
            return asset_ids(conn, collection_id, [uri]).get(uri)

    def delete_asset(self, asset_id: int) -> None:
        """Mark one asset ``deleted`` and drop its vectors, as ``commit``'s deletes do.

        Raises:
            NotFound: no asset has that id, or it is deleted already.
        """
        with self._db.writer.begin() as conn:
            collection_id = _live_asset(conn, asset_id)
            _mark_deleted(conn, collection_id, [asset_id])

    def update_metadata(self, asset_id: int, metadata: Mapping[str, Any], merge: bool) -> None:
        """Replace or merge the user metadata of one asset; logged as an ``update``.

        The stored metadata is read and written under the collection's lock, so two
        merges at once both land.

        Args:
            asset_id: The asset.
            metadata: The new metadata, or (``merge``) the changes to it.
            merge: Merge key by key (see ``merge_metadata``) instead of replacing.

        Raises:
            NotFound: no asset has that id, or it is deleted.
        """
        with self._db.writer.begin() as conn:
            _live_asset(conn, asset_id)
            stored = conn.execute(
                select(Asset.user_metadata).where(Asset.id == asset_id)
            ).scalar_one()
            new = merge_metadata(stored or {}, metadata) if merge else dict(metadata)
            conn.execute(
                update(Asset)
                .where(Asset.id == asset_id)
                .values(user_metadata=new, updated_at=func.now())
            )
            log_updates(conn, [asset_id])

    def touch(self, collection_id: int, uri: str, mtime_ns: int) -> None:
        """Record a new mtime for a file whose content did not change (logged as an update)."""
        with self._db.writer.begin() as conn:
            lock_collection(conn, collection_id)
            row = conn.execute(
                update(Asset)
                .where(Asset.collection_id == collection_id, Asset.uri == uri)
                .values(mtime_ns=mtime_ns)
                .returning(Asset.id)
            ).first()
            if row is not None:
                log_updates(conn, [row.id])

    def set_metadata(self, metadata: dict[int, dict[str, Any]]) -> None:
        """Replace the user metadata of assets (by asset id); vectors are untouched.

        Each affected embedding gets an ``update`` change-log entry, so servers that
        cache asset rows drop their copies.
        """
        if not metadata:
            return
        ids = sorted(metadata)
        with self._db.writer.begin() as conn:
            for collection_id in _collections_of(conn, ids):  # one lock order: no deadlock
                lock_collection(conn, collection_id)
            conn.execute(
                update(Asset).where(Asset.id == bindparam("b_id")),
                [{"b_id": k, "user_metadata": v} for k, v in metadata.items()],
            )
            log_updates(conn, ids)


def merge_metadata(stored: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``stored`` with ``changes`` merged in: objects merged recursively, a None removes its key.

    >>> merge_metadata({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": None, "z": 3}, "b": None})
    {'a': {'x': 1, 'z': 3}}
    """
    out = dict(stored)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_metadata(out[key], value)
        elif isinstance(value, Mapping):
            out[key] = merge_metadata({}, value)  # a null inside a new object is not stored
        else:
            out[key] = value
    return out


def _live_asset(conn: Connection, asset_id: int) -> int:
    """Lock the collection of a live (not deleted) asset; returns the collection's id.

    Raises:
        NotFound: no asset has that id, or it is deleted.
    """
    owner = select(Asset.collection_id).where(Asset.id == asset_id)
    collection_id = conn.execute(owner).scalar()
    if collection_id is None:
        raise NotFound(f"asset {asset_id} does not exist")
    lock_collection(conn, collection_id)  # then read the state: a writer may just have changed it
    state = conn.execute(select(Asset.state).where(Asset.id == asset_id)).scalar()
    if state is None:
        raise NotFound(f"asset {asset_id} does not exist")
    if state == DELETED:
        raise NotFound(f"asset {asset_id} is deleted")
    return int(collection_id)


def _check_dim(collection: CollectionInfo, w: AssetWrite) -> None:
    if w.vectors is not None and (w.vectors.ndim != 2 or w.vectors.shape[1] != collection.dim):
        raise DimensionMismatch(
            f"{w.uri}: vectors of shape {w.vectors.shape}, collection "
            f"{collection.name!r} is {collection.dim}-d"
        )


def _collections_of(conn: Connection, ids: Sequence[int]) -> list[int]:
    """The ids of the collections that own those assets, ascending."""
    found: set[int] = set()
    for chunk in in_chunks(ids):
        stmt = select(Asset.collection_id).where(Asset.id.in_(chunk)).distinct()
        found.update(conn.execute(stmt).scalars())
    return sorted(found)


def _write_assets(conn: Connection, collection_id: int, writes: list[AssetWrite]) -> dict[str, int]:
    """Replace or insert the assets (the last write of a uri wins) and their vectors."""
    latest = {w.uri: w for w in writes}
    ids = asset_ids(conn, collection_id, list(latest))
    drop_vectors(conn, collection_id, list(ids.values()))
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
    _insert_vectors(conn, collection_id, [(ids[uri], w) for uri, w in latest.items()])
    return ids


def _insert_vectors(
    conn: Connection, collection_id: int, owned: list[tuple[int, AssetWrite]]
) -> None:
    """Insert the writes' vectors (one per segment) and log each as added."""
    rows = [
        dict(
            collection_id=collection_id,
            asset_id=asset_id,
            vector=encode_vector(v),
            dtype=STORE_DTYPE.str,
            segment_start=start,
            segment_end=end,
        )
        for asset_id, w in owned
        if w.vectors is not None and len(w.vectors)
        for v, (start, end) in zip(
            w.vectors, w.segments or [(None, None)] * len(w.vectors), strict=True
        )
    ]
    if rows:
        added = conn.execute(
            insert(Embedding).returning(
                Embedding.id, Embedding.asset_id, sort_by_parameter_order=True
            ),
            rows,
        ).all()
        log(conn, collection_id, "add", [(e, a) for e, a in added])


def _delete_assets(conn: Connection, collection_id: int, uris: list[str]) -> None:
    """Mark the assets ``deleted`` and drop their vectors."""
    _mark_deleted(conn, collection_id, list(asset_ids(conn, collection_id, uris).values()))


def _mark_deleted(conn: Connection, collection_id: int, ids: list[int]) -> None:
    """Drop the assets' vectors (logged) and set their state to ``deleted``."""
    drop_vectors(conn, collection_id, ids)
    for chunk in in_chunks(ids):
        conn.execute(
            update(Asset)
            .where(Asset.id.in_(chunk))
            .values(state=DELETED, error=None, updated_at=func.now())
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
