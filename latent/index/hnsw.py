"""The graph index: FAISS' ``IndexHNSWFlat`` under an id map, with tombstones for removal."""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

from latent.index.base import FaissIndex, as_matrix, filter_boost, member
from latent.index.policy import MAP_BYTES, IndexSpec

# faiss' type stubs lack SearchParametersHNSW.
_faiss: Any = faiss

DEFAULT_EF_SEARCH = 64


class HNSWIndex(FaissIndex):
    """An HNSW graph (``IndexHNSWFlat``, inner product) with an id map.

    FAISS cannot remove from an HNSW graph, so ``remove`` leaves a tombstone that every
    read skips; the live index rebuilds the graph once tombstones pile up.
    """

    def __init__(
        self,
        dim: int,
        spec: IndexSpec,
        index: faiss.Index | None = None,
        deleted: np.ndarray | None = None,
    ) -> None:
        self.dim = dim
        self.spec = spec
        if index is None:
            graph = faiss.IndexHNSWFlat(dim, spec.m, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = spec.ef_construction
            index = faiss.IndexIDMap2(graph)
        self._index = index
        self._set_deleted(np.zeros(0, np.int64) if deleted is None else deleted)

    def _set_deleted(self, deleted: np.ndarray) -> None:
        self._deleted = np.unique(np.asarray(deleted, dtype=np.int64))
        batch = faiss.IDSelectorBatch(self._deleted) if len(self._deleted) else None
        self._alive = (batch, faiss.IDSelectorNot(batch)) if batch is not None else None

    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self._deleted)

    @property
    def deleted_count(self) -> int:
        """Tombstoned vectors still held in the graph."""
        return len(self._deleted)

    def _stored(self) -> np.ndarray:
        return np.sort(faiss.vector_to_array(self._index.id_map).astype(np.int64))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors; re-adding a stored id rebuilds the graph (a graph keeps one per id)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return
        matrix = as_matrix(vectors, self.dim)
        if member(self._stored(), ids).any():
            self._rebuild_with(ids, matrix)
            return
        self._index.add_with_ids(matrix, ids)

    def _rebuild_with(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        keep = self.ids()
        keep = keep[~np.isin(keep, ids)]
        old = self.vectors(keep)
        fresh = HNSWIndex(self.dim, self.spec)
        fresh._index.add_with_ids(np.concatenate([old, matrix]), np.concatenate([keep, ids]))
        self._index, self._deleted, self._alive = fresh._index, fresh._deleted, fresh._alive

    def remove(self, ids: np.ndarray) -> int:
        """Tombstone the ids that are live; returns how many."""
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        hit = ids[member(self._stored(), ids) & ~member(self._deleted, ids)]
        if len(hit):
            self._set_deleted(np.concatenate([self._deleted, hit]))
        return len(hit)

    def _params(self, selector: Any, fraction: float, k: int) -> tuple[Any, tuple[Any, ...]]:
        keep: tuple[Any, ...] = (selector, self._alive)
        if self._alive is not None:
            both = (
                self._alive[1]
                if selector is None
                else faiss.IDSelectorAnd(selector, self._alive[1])
            )
            selector, keep = both, (*keep, both)
        ef = max(self.spec.ef_search or DEFAULT_EF_SEARCH, k)
        if selector is not None:
            ef = filter_boost(ef, fraction, 16 * ef)
        params = _faiss.SearchParametersHNSW(efSearch=ef)
        if selector is not None:
            params.sel = selector
        return params, keep

    def _mask(self, ids: np.ndarray) -> np.ndarray:
        return ~member(self._deleted, ids)

    def ids(self) -> np.ndarray:
        """Every live id, in storage order."""
        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        return ids[self._mask(ids)] if len(self._deleted) else ids

    def matrix(self) -> np.ndarray:
        """Live vectors in the order of ``ids()`` (a view of the storage when nothing is dead)."""
        total = int(self._index.ntotal)
        if not total:
            return np.zeros((0, self.dim), np.float32)
        graph: Any = faiss.downcast_index(self._index.index)
        storage: Any = faiss.downcast_index(graph.storage)
        flat = faiss.rev_swig_ptr(storage.get_xb(), total * self.dim).reshape(total, self.dim)
        if not len(self._deleted):
            return flat
        return flat[self._mask(faiss.vector_to_array(self._index.id_map).astype(np.int64))]

    def copy(self) -> HNSWIndex:
        """A deep copy, tombstones included."""
        return HNSWIndex(self.dim, self.spec, faiss.clone_index(self._index), self._deleted)

    def memory_bytes(self) -> int:
        """float32 vectors, graph links, ids and the id map (tombstoned ones included)."""
        graph: Any = faiss.downcast_index(self._index.index)
        total = int(self._index.ntotal)
        links = graph.hnsw.neighbors.size() * 4 + total * (4 + 8)  # links, levels, offsets
        return total * (4 * self.dim + 8 + MAP_BYTES) + links

    def state(self) -> dict[str, Any]:
        """The tombstones, which the FAISS bytes do not record."""
        return {"deleted": self._deleted.tolist()}
