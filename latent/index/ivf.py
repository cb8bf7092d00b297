"""The inverted-file index: FAISS IVF lists with Flat, SQ8 or PQ codes and a hash direct map."""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

from latent.index.base import FaissIndex, as_matrix, filter_boost
from latent.index.policy import MAP_BYTES, IndexSpec

# faiss' type stubs lack DirectMap, SearchParametersIVF and most IVF fields.
_faiss: Any = faiss

DEFAULT_NPROBE_DIVISOR = 16  # untuned IVF: probe 1/16 of the lists


class IVFIndex(FaissIndex):
    """Inverted lists (Flat, SQ8 or PQ codes, inner product) keyed by id via a hash direct map."""

    def __init__(self, dim: int, spec: IndexSpec, index: faiss.Index | None = None) -> None:
        self.dim = dim
        self.spec = spec
        if index is None:
            index = _new_ivf(dim, spec)
        self._index = index

    @property
    def nprobe(self) -> int:
        """Lists probed per query (the tuned value, or a default)."""
        return self.spec.nprobe or max(1, self.spec.nlist // DEFAULT_NPROBE_DIVISOR)

    def train(self, sample: np.ndarray) -> None:
        """Train the coarse quantizer (and SQ/PQ codebooks) on a sample."""
        self._index.train(as_matrix(sample, self.dim))

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids; absent ones are ignored (the hash map wants an IDSelectorArray)."""
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        if not len(ids) or not len(self):
            return 0
        return int(self._index.remove_ids(faiss.IDSelectorArray(ids)))

    def _params(self, selector: Any, fraction: float, k: int) -> tuple[Any, tuple[Any, ...]]:
        nprobe = self.nprobe
        if selector is not None:
            nprobe = filter_boost(nprobe, fraction, self.spec.nlist)
        params = _faiss.SearchParametersIVF()
        params.nprobe = nprobe
        if selector is not None:
            params.sel = selector
        return params, (selector,)

    def ids(self) -> np.ndarray:
        """Every id, list by list."""
        lists: Any = faiss.extract_index_ivf(self._index).invlists
        parts = [np.zeros(0, np.int64)]
        for no in range(lists.nlist):
            size = lists.list_size(no)
            if size:
                parts.append(faiss.rev_swig_ptr(lists.get_ids(no), size).astype(np.int64))
        return np.concatenate(parts)

    def matrix(self) -> np.ndarray:
        """Every vector decoded (a copy; SQ8 / PQ vectors are approximations)."""
        return self.vectors(self.ids())

    def copy(self) -> IVFIndex:
        """A deep copy (lists, codebooks and the direct map)."""
        return IVFIndex(self.dim, self.spec, faiss.clone_index(self._index))

    def empty_like(self) -> IVFIndex:
        """An empty index sharing this one's training: centroids, SQ ranges or PQ codebooks.

        Cheap (no inverted list is copied), so a large delta segment can be searched
        through lists like the base instead of exhaustively.
        """
        source: Any = self._index
        quantizer: Any = faiss.clone_index(source.quantizer)
        nlist, ip = int(source.nlist), faiss.METRIC_INNER_PRODUCT
        index: Any
        if self.spec.kind == "ivf-flat":
            index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, ip)
        elif self.spec.kind == "ivf-sq8":
            qtype = _faiss.ScalarQuantizer.QT_8bit
            index = faiss.IndexIVFScalarQuantizer(quantizer, self.dim, nlist, qtype, ip)
            index.sq = source.sq  # a copy of the trained ranges
        else:
            pq = source.pq
            index = faiss.IndexIVFPQ(quantizer, self.dim, nlist, pq.M, pq.nbits, ip)
            index.pq = pq  # a copy of the trained codebooks
        index.by_residual = source.by_residual
        quantizer.this.disown()  # the new index owns (and frees) its quantizer
        index.own_fields = True
        index.is_trained = True
        index.set_direct_map_type(_faiss.DirectMap.Hashtable)
        return IVFIndex(self.dim, self.spec, index)

    def memory_bytes(self) -> int:
        """Codes, ids, the direct map and the centroids."""
        ivf = faiss.extract_index_ivf(self._index)
        return len(self) * (int(ivf.code_size) + 8 + MAP_BYTES) + int(ivf.nlist) * self.dim * 4


def _new_ivf(dim: int, spec: IndexSpec) -> Any:
    storage = {"ivf-flat": "Flat", "ivf-sq8": "SQ8", "ivf-pq": f"PQ{spec.pq_m}"}[spec.kind]
    index: Any = faiss.index_factory(dim, f"IVF{spec.nlist},{storage}", faiss.METRIC_INNER_PRODUCT)
    ivf: Any = faiss.extract_index_ivf(index)
    # A hash direct map gives reconstruct-by-id and cheap removal for arbitrary ids.
    ivf.set_direct_map_type(_faiss.DirectMap.Hashtable)
    ivf.cp.niter = 10  # k-means converges well enough for search; halves training time
    if spec.kind == "ivf-pq":
        index.do_polysemous_training = False  # ten times the training time; unused here
        index.pq.cp.niter = 10
        index.pq.cp.max_points_per_centroid = 64  # 16k points train each codebook
    return index
