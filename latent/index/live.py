"""A collection's in-memory index generation, kept in step with the catalog's change log.

Start-up loads the newest valid snapshot and replays the log after its ``seq``; with no
valid snapshot it rebuilds from SQL. ``refresh`` applies new log entries as a new
``LayeredIndex`` view (a small delta segment and tombstones; the base is shared, never
copied) and publishes it by swapping one reference, so a search always runs on one
consistent, unchanging generation and never waits for a writer.

``maintain`` starts background work off the request path: a *fold* (a copy of the base
absorbs the delta once the policy finds it large enough) or a *rebuild* (when the
policy picks another index type or parameters, an IVF index's collection doubled since
training, or an HNSW graph is 10% tombstones). The new base is caught up with the
changes that arrived meanwhile, swapped in, and snapshotted (in the format of
latent/index/snapshot.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latent.catalog import Catalog, ChangeBatch, CollectionInfo
from latent.errors import AssetSearchError
from latent.index import snapshot
from latent.index.base import VectorIndex
from latent.index.build import build_index
from latent.index.flat import FlatIndex
from latent.index.hnsw import HNSWIndex
from latent.index.layers import LayeredIndex
from latent.index.policy import IndexPolicy, IndexSpec, estimate_bytes

log = logging.getLogger(__name__)

HNSW_MAX_DELETED = 0.1  # rebuild an HNSW graph once this share of it is tombstones
LOSSLESS = ("flat", "hnsw", "ivf-flat")  # bases whose vectors can seed a rebuild exactly
RETRY_AFTER = 300.0  # seconds before a failed background job is tried again


@dataclass(frozen=True)
class Generation:
    """An index view and the change-log ``seq`` it reflects; never mutated once published."""

    index: LayeredIndex
    seq: int


class LiveIndex:
    """The current generation of one collection's index, and its background upkeep."""

    def __init__(
        self,
        catalog: Catalog,
        collection: CollectionInfo,
        snapshot_dir: Path | None = None,
        policy: IndexPolicy | None = None,
        on_change: Callable[[np.ndarray], None] | None = None,
    ) -> None:
        """Args:
        catalog: The source of truth.
        collection: The collection this index serves.
        snapshot_dir: Where snapshots are read and written (None: never).
        policy: Chooses the index type.
        on_change: Called with the embedding ids removed or updated by each change
            batch read from the log, before it is published (to drop cached rows).
        """
        self.catalog = catalog
        self.collection = collection
        self.snapshot_dir = snapshot_dir
        self.policy = policy or IndexPolicy()
        self._on_change = on_change
        self._generation = Generation(LayeredIndex.of(FlatIndex(collection.dim), 0), 0)
        self._apply_lock = threading.Lock()  # one writer at a time; readers never take it
        self._snapshot_lock = threading.Lock()
        self._job: threading.Thread | None = None
        self._closed = threading.Event()
        self.snapshot_seq = 0
        self.last_job: str | None = None  # what the last background job did, for logs / tests
        self._failed_at: float | None = None

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
            source = "snapshot"
            loaded = self._read_snapshot()
            if loaded is None:
                source, loaded = "sql", self._load_from_sql()
            base, seq = loaded
            view, seq = self._catch_up(LayeredIndex.of(base, seq), seq)
            self._generation = Generation(view, seq)
        return source

    def refresh(self) -> int:
        """Apply change-log entries after the current ``seq``; returns how many ids changed."""
        with self._apply_lock:
            current = self._generation
            batch = self._changes(current.seq)
            if batch.last_seq == current.seq:
                return 0
            view = current.index.apply(batch.removed, batch.added_ids, batch.added_vectors)
            self._generation = Generation(view, batch.last_seq)
            return len(batch.removed) + len(batch.added_ids)

    def _changes(self, seq: int) -> ChangeBatch:
        """The change log after ``seq``; the ids it removes or updates go to ``on_change``."""
        batch = self.catalog.changes_since(self.collection, seq)
        if self._on_change is not None and (len(batch.removed) or len(batch.updated)):
            self._on_change(np.concatenate([batch.removed, batch.updated]))
        return batch

    def _catch_up(self, view: LayeredIndex, seq: int) -> tuple[LayeredIndex, int]:
        """Apply every change after ``seq`` to an unpublished view."""
        while True:
            batch = self._changes(seq)
            if batch.last_seq == seq:
                return view, seq
            view = view.apply(batch.removed, batch.added_ids, batch.added_vectors)
            seq = batch.last_seq

    # -- building -----------------------------------------------------------------------

    def override(self) -> IndexSpec | None:
        """The collection's own index override from the catalog (None: the policy decides)."""
        try:
            options = self.catalog.index_options(self.collection.id)
            return IndexSpec.from_dict(options) if options else None
        except AssetSearchError as exc:
            log.warning("collection %s: ignoring its index options: %s", self.collection.name, exc)
            return None

    def _load_from_sql(self) -> tuple[VectorIndex, int]:
        started = time.monotonic()
        ids, matrix, seq = self._read_sql()
        spec = self.policy.choose(len(ids), self.collection.dim, self.override())
        flat = IndexSpec("flat", trained_on=len(ids))
        budget = self.policy.memory_budget
        if budget is None or estimate_bytes(flat, len(ids), self.collection.dim) <= budget:
            # Serve exact results now; maintain() trains the chosen index in the background.
            spec = flat
        index = build_index(spec, ids, matrix, self.policy.target_recall)
        log.info(
            "rebuilt %s from SQL: %d vectors in %.1f s",
            self.collection.name,
            len(index),
            time.monotonic() - started,
        )
        return index, seq

    def _read_sql(self) -> tuple[np.ndarray, np.ndarray, int]:
        # Read the head first: anything committed later is replayed again, idempotently.
        seq = self.catalog.head_seq(self.collection.id)
        chunks = list(self.catalog.all_vectors(self.collection))
        ids = np.concatenate([np.zeros(0, np.int64)] + [c[0] for c in chunks])
        empty = np.zeros((0, self.collection.dim), np.float32)
        return ids, np.concatenate([empty] + [c[1] for c in chunks]), seq

    # -- background upkeep ----------------------------------------------------------------

    def due(self) -> tuple[str, str] | None:
        """The background job due now, as (``"fold"`` or ``"rebuild"``, why), or None."""
        view = self._generation.index
        reason = self.policy.rebuild_reason(
            view.spec, len(view), self.collection.dim, self.override()
        )
        if reason:
            return "rebuild", reason
        base = view.base.index
        if isinstance(base, HNSWIndex) and base.deleted_count > HNSW_MAX_DELETED * max(
            len(base), 1
        ):
            return "rebuild", f"{base.deleted_count} tombstones in the HNSW graph"
        if self.policy.fold_due(view.pending, len(view.base.stored)):
            return "fold", f"{view.pending} pending changes"
        return None

    @property
    def busy(self) -> bool:
        """Whether a background fold or rebuild is running."""
        return self._job is not None and self._job.is_alive()

    def maintain(self, wait: bool = False) -> str | None:
        """Start the due background job, unless one runs; returns what was started.

        Args:
            wait: Join the job before returning (tests, shutdown paths).
        """
        if self.busy or self._closed.is_set():
            return None
        if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_AFTER:
            return None  # do not burn the machine retrying a job that just failed
        job = self.due()
        if job is None:
            return None
        kind, why = job
        thread = threading.Thread(
            target=self._run_job, args=(kind, why), name=f"index-{kind}", daemon=True
        )
        self._job = thread
        thread.start()
        if wait:
            thread.join()
        return f"{kind}: {why}"

    def rebuild(self, wait: bool = False) -> None:
        """Rebuild the base now (in the background unless ``wait``), whatever is due."""
        if self.busy:
            return
        self._job = threading.Thread(
            target=self._run_job, args=("rebuild", "requested"), name="index-rebuild", daemon=True
        )
        self._job.start()
        if wait:
            self._job.join()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait for a running background job; returns whether none is running now."""
        job = self._job
        if job is not None:
            job.join(timeout)
        return not self.busy

    def close(self, timeout: float = 30.0) -> None:
        """Stop starting jobs and give a running one ``timeout`` seconds to finish."""
        self._closed.set()
        self.wait_idle(timeout)

    def _run_job(self, kind: str, why: str) -> None:
        started = time.monotonic()
        try:
            current = self._generation
            if kind == "fold":
                base, seq = current.index.fold(), current.seq
            else:
                base, seq = self._rebuilt(current)
            if self._closed.is_set():
                return
            self._install(base, seq)
            self.last_job = f"{kind} ({why}): {base.spec.describe()}"
            log.info(
                "collection %s: %s in %.1f s",
                self.collection.name,
                self.last_job,
                time.monotonic() - started,
            )
            self._snapshot_quietly()
        except Exception:  # a failed job leaves the served generation as it was
            self._failed_at = time.monotonic()
            log.exception("collection %s: background %s failed", self.collection.name, kind)

    def _rebuilt(self, current: Generation) -> tuple[VectorIndex, int]:
        """A freshly trained base, from the served vectors when exact, else from SQL."""
        view = current.index
        if view.spec.kind in LOSSLESS:
            ids, matrix, seq = view.ids(), view.matrix(), current.seq
        else:
            ids, matrix, seq = self._read_sql()
        spec = self.policy.choose(len(ids), self.collection.dim, self.override())
        return build_index(spec, ids, matrix, self.policy.target_recall), seq

    def _install(self, base: VectorIndex, seq: int) -> None:
        """Catch a new base up with the log and publish it."""
        view, seq = self._catch_up(LayeredIndex.of(base, seq), seq)  # writers keep going
        with self._apply_lock:
            view, seq = self._catch_up(view, seq)  # the last few changes, then swap
            self._generation = Generation(view, seq)

    # -- snapshots ----------------------------------------------------------------------

    def _dir(self) -> Path | None:
        return None if self.snapshot_dir is None else self.snapshot_dir / self.collection.name

    def _snapshot_quietly(self) -> None:
        try:
            self.write_snapshot(fold=False)
        except OSError as exc:
            log.warning("could not write snapshot of %s: %s", self.collection.name, exc)

    def write_snapshot(self, fold: bool = True) -> Path | None:
        """Write the current base atomically: index file, fsync, rename, manifest last.

        Args:
            fold: First fold pending changes into a new base (a copy of it, here and
                now: for shutdown), so the snapshot holds everything served. Without
                it the pending changes stay in the log after the base's seq, which a
                restart replays.
        """
        directory = self._dir()
        if directory is not None and fold and not self.busy and self._generation.index.pending:
            current = self._generation
            self._install(current.index.fold(), current.seq)
        with self._snapshot_lock:
            view = self._generation.index
            if directory is None or view.base_seq == self.snapshot_seq:
                return None
            path = snapshot.write_snapshot(
                directory, view.base.index, view.base_seq, self.collection
            )
            self.snapshot_seq = view.base_seq
            return path

    def _read_snapshot(self) -> tuple[VectorIndex, int] | None:
        directory = self._dir()
        if directory is None:
            return None
        found = snapshot.read_snapshot(
            directory, self.collection, lambda: self.catalog.head_seq(self.collection.id)
        )
        if found is None:
            return None
        self.snapshot_seq = found.seq
        return found.index, found.seq
