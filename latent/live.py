"""A collection's in-memory index generation, kept in step with the catalog's change log.

Start-up loads the newest valid snapshot and replays the log after its ``seq``; with no
valid snapshot it rebuilds from SQL. ``refresh`` applies new log entries to a copy and
swaps it in, so a search always runs on one consistent, unchanging generation.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import faiss

from latent.catalog import Catalog, CollectionInfo
from latent.encoders import file_sha256
from latent.vectors import FlatIndex, VectorIndex

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Generation:
    """An index and the change-log ``seq`` it reflects; never mutated once published."""

    index: VectorIndex
    seq: int


class LiveIndex:
    """The current generation of one collection's index."""

    def __init__(
        self, catalog: Catalog, collection: CollectionInfo, snapshot_dir: Path | None = None
    ) -> None:
        self.catalog = catalog
        self.collection = collection
        self.snapshot_dir = snapshot_dir
        self._generation = Generation(FlatIndex(collection.dim), 0)
        self._apply_lock = threading.Lock()  # one writer at a time; readers never take it
        self.snapshot_seq = 0

    @property
    def generation(self) -> Generation:
        """The generation to search (a plain reference read: never blocks)."""
        return self._generation

    def load(self) -> str:
        """Load the newest valid snapshot or rebuild from SQL, then replay the log.

        Returns:
            "snapshot" or "sql": where the vectors came from.
        """
        with self._apply_lock:
            source = "sql"
            loaded = self._read_snapshot()
            if loaded is None:
                loaded = self._rebuild()
            else:
                source = "snapshot"
            self._generation = loaded
        self.refresh()
        return source

    def _rebuild(self) -> Generation:
        started = time.monotonic()
        # Read the head first: anything committed later is replayed again, idempotently.
        seq = self.catalog.head_seq(self.collection.id)
        index = FlatIndex(self.collection.dim)
        for ids, vectors in self.catalog.all_vectors(self.collection):
            index.add(ids, vectors)
        log.info(
            "rebuilt %s from SQL: %d vectors in %.1f s",
            self.collection.name,
            len(index),
            time.monotonic() - started,
        )
        return Generation(index, seq)

    def refresh(self) -> int:
        """Apply change-log entries after the current ``seq``; returns how many ids changed."""
        with self._apply_lock:
            current = self._generation
            batch = self.catalog.changes_since(self.collection, current.seq)
            if batch.last_seq == current.seq:
                return 0
            index = current.index.copy()
            index.remove(batch.removed)
            index.add(batch.added_ids, batch.added_vectors)
            self._generation = Generation(index, batch.last_seq)
            return len(batch.removed) + len(batch.added_ids)

    # -- snapshots ----------------------------------------------------------------------

    def _dir(self) -> Path | None:
        return None if self.snapshot_dir is None else self.snapshot_dir / self.collection.name

    def write_snapshot(self) -> Path | None:
        """Write the current generation atomically: index file, fsync, rename, manifest last."""
        directory = self._dir()
        generation = self._generation
        if directory is None or generation.seq == self.snapshot_seq:
            return None
        assert isinstance(generation.index, FlatIndex)
        directory.mkdir(parents=True, exist_ok=True)
        name = f"index-{generation.seq:012d}.faiss"
        _atomic_write(
            directory / name, faiss.serialize_index(generation.index.faiss_index).tobytes()
        )
        manifest = {
            "seq": generation.seq,
            "ntotal": len(generation.index),
            "file": name,
            "sha256": file_sha256(directory / name),
            "index_type": "flat",
            "model_spec": self.collection.model_spec,
            "dim": self.collection.dim,
            "collection_id": self.collection.id,
        }
        _atomic_write(directory / MANIFEST, json.dumps(manifest, indent=2).encode())
        for old in directory.glob("index-*.faiss"):
            if old.name != name:
                old.unlink(missing_ok=True)
        self.snapshot_seq = generation.seq
        return directory / name

    def _read_snapshot(self) -> Generation | None:
        directory = self._dir()
        if directory is None or not (directory / MANIFEST).exists():
            return None
        try:
            manifest = json.loads((directory / MANIFEST).read_text())
            path = directory / manifest["file"]
            problem = self._snapshot_problem(manifest, path)
            if problem:
                log.warning("ignoring snapshot %s: %s; rebuilding from SQL", path, problem)
                return None
            index = faiss.read_index(str(path))
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            log.warning(
                "ignoring unreadable snapshot in %s: %s; rebuilding from SQL", directory, exc
            )
            return None
        if index.ntotal != manifest["ntotal"]:
            log.warning(
                "snapshot %s holds %d vectors, manifest says %d",
                path,
                index.ntotal,
                manifest["ntotal"],
            )
            return None
        self.snapshot_seq = int(manifest["seq"])
        return Generation(FlatIndex(self.collection.dim, index), int(manifest["seq"]))

    def _snapshot_problem(self, manifest: dict, path: Path) -> str | None:
        if (
            manifest.get("collection_id") != self.collection.id
            or manifest.get("dim") != self.collection.dim
        ):
            return "it belongs to another collection"
        if manifest.get("model_spec") != self.collection.model_spec:
            return "it was built with another model"
        if manifest["seq"] > self.catalog.head_seq(self.collection.id):
            return "it is ahead of the catalog (was the database replaced?)"
        if not path.exists() or file_sha256(path) != manifest.get("sha256"):
            return "its checksum does not match"
        return None


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
