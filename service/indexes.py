"""Every collection's live index, loaded at start-up and kept in step by a tailing thread.

After each refresh the tail asks the live index for due upkeep (a fold of the delta
or a retrain), which runs in its own background thread and snapshots when done. A
collection deleted from the catalog (here or by another replica) loses its live index
and its snapshot files; one deleted and created again under its name is loaded anew.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from latent.errors import NotFound, Unavailable
from latent.index.live import LiveIndex
from latent.index.policy import IndexPolicy
from service.hits import HitCache

if TYPE_CHECKING:
    from pathlib import Path

    from latent.catalog import Catalog

log = logging.getLogger(__name__)

LOAD_WAIT = 0.5  # seconds a request waits for a collection being loaded before UNAVAILABLE


class IndexRegistry:
    """Live indexes by collection name; a background thread tails the change log."""

    def __init__(
        self,
        catalog: Catalog,
        snapshot_dir: Path | None,
        poll_interval: float,
        on_ready: Callable[[bool], None] | None = None,
        policy: IndexPolicy | None = None,
    ) -> None:
        self.catalog = catalog
        self.snapshot_dir = snapshot_dir
        self.poll_interval = poll_interval
        self.policy = policy or IndexPolicy()
        self.hits = HitCache(catalog)  # asset rows of hits, evicted as the log says
        self._on_ready = on_ready
        self._indexes: dict[str, LiveIndex] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # One applier at a time (the tail thread, or a request naming a new collection);
        # searches read the published generations without it.
        self._sync_lock = threading.Lock()

    def start(self) -> None:
        """Load every collection, then tail the log in a daemon thread."""
        self.sync()
        if self._on_ready:
            self._on_ready(True)
        self._thread = threading.Thread(target=self._run, name="index-sync", daemon=True)
        self._thread.start()

    def stop(self, snapshot: bool = True) -> None:
        """Stop tailing and background upkeep and, by default, snapshot each index."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        for live in list(self._indexes.values()):
            live.close()
            if snapshot:
                self._snapshot(live)

    def get(self, name: str) -> LiveIndex:
        """The live index of a collection.

        Raises:
            NotFound: no such collection in the catalog.
            Unavailable: the collection exists but its index is still loading.
        """
        live = self._indexes.get(name)
        if live is not None:
            return live
        self.catalog.collection(name)  # raises NotFound for an unknown name
        # The tail thread may be loading it right now: a short load is waited for.
        if not self._sync_lock.acquire(timeout=LOAD_WAIT):
            raise Unavailable(f"the index of collection {name!r} is loading; retry shortly")
        try:
            if name not in self._indexes:
                self._sync()
        finally:
            self._sync_lock.release()
        if name not in self._indexes:
            raise NotFound(f"collection {name!r} does not exist")
        return self._indexes[name]

    def all(self) -> dict[str, LiveIndex]:
        """A copy of the loaded indexes."""
        return dict(self._indexes)

    def sync(self) -> None:
        """Pick up new collections and apply new change-log entries to every index."""
        with self._sync_lock:
            self._sync()

    def drop(self, name: str) -> None:
        """Forget a deleted collection: close its live index, delete its snapshot files.

        Searches already running on its last generation finish on it; new ones find
        the collection gone. A no-op for a collection that has no live index here.
        """
        with self._sync_lock:
            live = self._indexes.pop(name, None)
            if live is not None:
                self._discard(live)
            else:
                self._remove_snapshot(name)

    def _discard(self, live: LiveIndex) -> None:
        """Stop a dropped index's upkeep, drop its cached rows and delete its snapshot."""
        live.close()
        self.hits.evict(live.generation.index.ids())
        self._remove_snapshot(live.collection.name)
        log.info("collection %s: deleted; its index and snapshot are gone", live.collection.name)

    def _remove_snapshot(self, name: str) -> None:
        """Delete a collection's snapshot directory (only ever one right under ours)."""
        if self.snapshot_dir is None:
            return
        folder = (self.snapshot_dir / name).resolve()
        if folder.parent == self.snapshot_dir.resolve() and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)

    def _sync(self) -> None:
        infos = self.catalog.collections()
        current = {info.name: info.id for info in infos}
        for name, loaded in list(self._indexes.items()):
            if current.get(name) != loaded.collection.id:  # deleted, or deleted and made anew
                self._discard(self._indexes.pop(name))
        for info in infos:
            live = self._indexes.get(info.name)
            if live is None:
                self._load(
                    LiveIndex(self.catalog, info, self.snapshot_dir, self.policy, self.hits.evict)
                )
                continue
            live.refresh()
            started = live.maintain()
            if started:
                log.info("collection %s: background %s", info.name, started)

    def _load(self, live: LiveIndex) -> None:
        name = live.collection.name
        source = live.load()
        log.info(
            "collection %s: %d vectors from %s, seq %d",
            name,
            len(live.generation.index),
            source,
            live.generation.seq,
        )
        self._indexes[name] = live
        live.maintain()

    def _snapshot(self, live: LiveIndex) -> None:
        try:
            live.write_snapshot()
        except OSError as exc:
            log.warning("could not write snapshot of %s: %s", live.collection.name, exc)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.sync()
            except Exception:  # keep tailing: a transient DB error must not stop the thread
                log.exception("index sync failed; retrying in %.1f s", self.poll_interval)
