"""The index snapshot format: a FAISS file and its manifest, written atomically, read back checked.

    SNAPSHOT_DIR/COLLECTION/
    ├── index-000000000042.faiss   the base index as of change-log seq 42 (FAISS' own format)
    └── manifest.json              seq, ntotal, file, sha256, index spec and state, model, dim

Each file is written to a temp file, fsynced, renamed and its directory fsynced, the
manifest last: a crash at any moment leaves the old snapshot or the new one, never a mix.
Reading refuses a snapshot of another collection or model, one ahead of the catalog, or
one whose checksum or vector count disagrees; the caller then rebuilds from SQL.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from latent.catalog import CollectionInfo
from latent.errors import AssetSearchError
from latent.hashing import file_sha256
from latent.index.base import VectorIndex
from latent.index.flat import FlatIndex
from latent.index.hnsw import HNSWIndex
from latent.index.ivf import IVFIndex
from latent.index.policy import IndexSpec

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
# What a snapshot file may fail with; each means "rebuild from SQL", never a failed start.
UNREADABLE = (OSError, ValueError, KeyError, TypeError, RuntimeError, AssetSearchError)

_FAISS_TYPES: dict[str, type] = {  # what a snapshot file of each kind must hold
    "flat": faiss.IndexFlat,
    "hnsw": faiss.IndexHNSWFlat,
    "ivf-flat": faiss.IndexIVFFlat,
    "ivf-sq8": faiss.IndexIVFScalarQuantizer,
    "ivf-pq": faiss.IndexIVFPQ,
}


@dataclass(frozen=True)
class Snapshot:
    """A base index read back from disk and the change-log ``seq`` it reflects."""

    index: VectorIndex
    seq: int


def write_snapshot(
    directory: Path, base: VectorIndex, seq: int, collection: CollectionInfo
) -> Path:
    """Write ``base`` as the collection's snapshot at ``seq``, replacing the previous one.

    Args:
        directory: The collection's snapshot directory (created if missing).
        base: The index to write; it must not change while it is written.
        seq: The change-log seq ``base`` reflects.
        collection: The collection it belongs to (recorded, checked on read).

    Returns:
        The path of the index file.

    Raises:
        OSError: the directory or a file cannot be written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    started = time.time()
    path = directory / f"index-{seq:012d}.faiss"
    _atomic_write_index(path, base)
    manifest = _manifest(path, base, seq, collection)
    _atomic_write(directory / MANIFEST, json.dumps(manifest, indent=2).encode())
    for old in directory.glob("index-*.faiss"):
        if old.name != path.name:
            old.unlink(missing_ok=True)
    _remove_stale_temp_files(directory, started)
    return path


def _manifest(
    path: Path, base: VectorIndex, seq: int, collection: CollectionInfo
) -> dict[str, Any]:
    return {
        "seq": seq,
        "ntotal": len(base),
        "file": path.name,
        "sha256": file_sha256(path),
        "index_type": base.spec.kind,
        "index": base.spec.to_dict(),
        "index_state": base.state(),
        "bytes_per_vector": round(base.memory_bytes() / max(len(base), 1), 1),
        "model_spec": collection.model_spec,
        "dim": collection.dim,
        "collection_id": collection.id,
    }


def read_snapshot(
    directory: Path, collection: CollectionInfo, head_seq: Callable[[], int]
) -> Snapshot | None:
    """The collection's snapshot, if there is a valid one (a refused one is logged).

    Args:
        directory: The collection's snapshot directory.
        collection: The collection the snapshot must belong to.
        head_seq: Reads the catalog's newest seq (a snapshot ahead of it is refused).

    Returns:
        The snapshot, or None when there is none or it is refused.
    """
    if not (directory / MANIFEST).exists():
        return None
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        path = directory / manifest["file"]
        problem = _problem(manifest, path, collection, head_seq)
        if problem:
            log.warning("ignoring snapshot %s: %s; rebuilding from SQL", path, problem)
            return None
        spec = IndexSpec.from_dict(manifest.get("index") or {"kind": manifest["index_type"]})
        index = read_index(spec, collection.dim, path, manifest.get("index_state"))
    except UNREADABLE as exc:
        log.warning("ignoring unreadable snapshot in %s: %s; rebuilding from SQL", directory, exc)
        return None
    if len(index) != manifest["ntotal"]:
        log.warning(
            "snapshot %s holds %d vectors, manifest says %d", path, len(index), manifest["ntotal"]
        )
        return None
    return Snapshot(index, int(manifest["seq"]))


def _problem(
    manifest: dict[str, Any],
    path: Path,
    collection: CollectionInfo,
    head_seq: Callable[[], int],
) -> str | None:
    """Why a snapshot must not be used, or None."""
    if manifest.get("collection_id") != collection.id or manifest.get("dim") != collection.dim:
        return "it belongs to another collection"
    if manifest.get("model_spec") != collection.model_spec:
        return "it was built with another model"
    if manifest["seq"] > head_seq():
        return "it is ahead of the catalog (was the database replaced?)"
    if not path.exists() or file_sha256(path) != manifest.get("sha256"):
        return "its checksum does not match"
    return None


def read_index(
    spec: IndexSpec, dim: int, path: Path, state: dict[str, Any] | None = None
) -> FlatIndex | HNSWIndex | IVFIndex:
    """Load an index file written by ``write`` as the type its spec names.

    Raises:
        ValueError: the file holds another index type or dimension.
        RuntimeError: FAISS cannot read the file.
    """
    raw: Any = faiss.read_index(str(path))
    if int(raw.d) != dim:
        raise ValueError(f"the index has dimension {raw.d}, the collection {dim}")
    id_mapped = spec.kind in ("flat", "hnsw")
    if id_mapped and not isinstance(raw, faiss.IndexIDMap2):
        raise ValueError(f"expected an id-mapped {spec.kind} index, got {type(raw).__name__}")
    inner = faiss.downcast_index(raw.index) if id_mapped else raw
    if not isinstance(inner, _FAISS_TYPES[spec.kind]):
        raise ValueError(f"expected {spec.kind}, the file holds {type(inner).__name__}")
    if spec.kind == "flat":
        return FlatIndex(dim, raw)
    if spec.kind == "hnsw":
        return HNSWIndex(dim, spec, raw, np.asarray((state or {}).get("deleted", []), np.int64))
    return IVFIndex(dim, spec, raw)


def _atomic_write_index(path: Path, index: VectorIndex) -> None:
    """``_atomic_write`` for a FAISS index, streamed to the temp file by FAISS itself."""
    tmp = path.with_name(f".{path.name}.tmp")
    index.write(tmp)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _remove_stale_temp_files(directory: Path, before: float) -> None:
    """Delete temp files of snapshot writes that a crash cut short (each as big as an index).

    Only those older than ``before`` (this write's start), so a write in progress in
    another process sharing the directory is left alone.
    """
    for tmp in directory.glob(".*.tmp"):
        try:
            if tmp.stat().st_mtime < before:
                tmp.unlink()
        except FileNotFoundError:
            pass


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
