"""A cache of the catalog rows that hits are made of, kept exact by the change log.

Joining a search's ids to their asset rows is most of what a search costs the service
beyond FAISS. Every change to those rows reaches the change log (an embedding is
added or deleted, or its asset's row is updated), and the tail thread passes the ids
of each batch it reads to ``evict``, so a cached row is never older than the index
generation it is served with.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    import numpy as np

    from latent.catalog import AssetRecord, Catalog

# Embedding id -> (asset, segment start, segment end), as Catalog.hits_for_embeddings gives.
Joined: TypeAlias = "dict[int, tuple[AssetRecord, float | None, float | None]]"

DEFAULT_CAPACITY = 50_000  # rows of about 1 KB each: tens of MB at most


class HitCache:
    """Asset rows by embedding id, read through to the catalog on a miss."""

    def __init__(self, catalog: Catalog, capacity: int = DEFAULT_CAPACITY) -> None:
        self.catalog = catalog
        self.capacity = capacity
        self._rows: Joined = {}
        self._lock = threading.Lock()
        # Bumped by every eviction: a read that began before one must not store what it
        # read, which may predate the change that caused it.
        self._epoch = 0

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, embedding_ids: Sequence[int]) -> Joined:
        """Rows of the ids that belong to indexed assets (others are left out)."""
        rows = self._rows
        found: Joined = {}
        missing = []
        for i in embedding_ids:
            row = rows.get(i)
            if row is None:
                missing.append(i)
            else:
                found[i] = row
        if missing:
            epoch = self._epoch
            fetched = self.catalog.hits_for_embeddings(missing)
            found.update(fetched)
            self._store(fetched, epoch)
        return found

    def _store(self, fetched: Joined, epoch: int) -> None:
        with self._lock:
            if epoch != self._epoch:
                return
            overflow = len(self._rows) + len(fetched) - self.capacity
            if overflow > 0:  # drop the oldest entries (dicts keep insertion order)
                for key in list(self._rows)[:overflow]:
                    del self._rows[key]
            self._rows.update(fetched)

    def evict(self, embedding_ids: np.ndarray) -> None:
        """Forget the rows of ids whose embedding or asset row changed."""
        with self._lock:
            self._epoch += 1
            for i in embedding_ids.tolist():
                self._rows.pop(i, None)
