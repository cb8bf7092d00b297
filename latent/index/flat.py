"""The exact index: every vector scored, FAISS' ``IndexFlatIP`` under an id map."""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

from latent.index.base import FaissIndex
from latent.index.policy import MAP_BYTES, IndexSpec


class FlatIndex(FaissIndex):
    """Exact inner-product search (``IndexFlatIP``) with an id map supporting removal."""

    def __init__(self, dim: int, index: faiss.Index | None = None) -> None:
        self.dim = dim
        self.spec = IndexSpec("flat")
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids; absent ones are ignored."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids) or not len(self):
            return 0
        return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))

    def ids(self) -> np.ndarray:
        """Every id, in storage order."""
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def matrix(self) -> np.ndarray:
        """The flat storage as an (ntotal, dim) view."""
        if not len(self):
            return np.zeros((0, self.dim), np.float32)
        flat: Any = faiss.downcast_index(self._index.index)
        return faiss.rev_swig_ptr(flat.get_xb(), len(self) * self.dim).reshape(len(self), self.dim)

    def copy(self) -> FlatIndex:
        """A deep copy (``faiss.clone_index``)."""
        return FlatIndex(self.dim, faiss.clone_index(self._index))

    def memory_bytes(self) -> int:
        """float32 vectors, ids and the reverse id map."""
        return len(self) * (4 * self.dim + 8 + MAP_BYTES)
