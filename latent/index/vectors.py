"""Vector indexes: FAISS behind the ``VectorIndex`` protocol, with stable int64 ids.

Vectors are L2-normalised, so inner product is cosine similarity. Three families:

    FlatIndex   exact (IndexIDMap2 over IndexFlatIP)
    HNSWIndex   graph (IndexIDMap2 over IndexHNSWFlat); removal is a tombstone
    IVFIndex    inverted lists with Flat, SQ8 or PQ codes (ids and a hash direct map
                live in the IVF index itself)

An index object is never mutated while readers use it: ``LiveIndex`` (latent/index/live.py)
publishes immutable layered views (latent/layers.py) and builds new bases on copies.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

import faiss
import numpy as np

from latent.errors import DimensionMismatch
from latent.index.policy import MAP_BYTES, IndexSpec

# faiss' type stubs lack newer classes (SearchParametersHNSW, DirectMap) and most fields.
_faiss: Any = faiss

MAX_FILTER_BOOST = 8  # at most this many times more IVF lists / HNSW beam under a filter
DEFAULT_NPROBE_DIVISOR = 16  # untuned IVF: probe 1/16 of the lists
DEFAULT_EF_SEARCH = 64


class VectorIndex(Protocol):
    """A k-NN index over unit vectors keyed by embedding id."""

    dim: int
    spec: IndexSpec

    def __len__(self) -> int:
        """Number of vectors."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under ids; an id already present is replaced."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids (absent ones are ignored); returns how many were removed."""
        ...

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row; missing slots have id -1.

        ``allowed`` (int64 ids) restricts the search to those ids (a FAISS id selector).
        """
        ...

    def search_selected(
        self, queries: np.ndarray, k: int, selector: Any, fraction: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k over the ids a prepared FAISS selector accepts (about ``fraction`` of them)."""
        ...

    def ids(self) -> np.ndarray:
        """Every id in the index."""
        ...

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ids (each must be present), in the given order."""
        ...

    def matrix(self) -> np.ndarray:
        """Every stored vector, in the order of ``ids()`` (a read-only view where possible)."""
        ...

    def copy(self) -> VectorIndex:
        """An independent copy to apply changes to."""
        ...

    def memory_bytes(self) -> int:
        """Estimated resident bytes (codes, links, ids and the id map)."""
        ...

    def write(self, path: Path) -> None:
        """Write the FAISS index file (for snapshots; ``read_index`` loads it back)."""
        ...

    def state(self) -> dict[str, Any]:
        """What the FAISS bytes do not hold (HNSW tombstones), JSON-able."""
        ...


def as_matrix(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Vectors as a contiguous float32 (n, dim) matrix (one vector becomes one row).

    Raises:
        DimensionMismatch: the vectors have another dimension.
    """
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise DimensionMismatch(f"expected vectors of dimension {dim}, got shape {vectors.shape}")
    return matrix


def no_hits(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """An empty (scores, ids) result for ``rows`` queries."""
    return np.zeros((rows, 0), np.float32), np.zeros((rows, 0), np.int64)


def member(sorted_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which ``values`` occur in ``sorted_ids`` (binary search: O(v log n), no big sort)."""
    if not len(sorted_ids) or not len(values):
        return np.zeros(len(values), bool)
    pos = np.searchsorted(sorted_ids, values).clip(max=len(sorted_ids) - 1)
    return np.asarray(sorted_ids[pos] == values)


def _boost(base: int, fraction: float, cap: int) -> int:
    """Widen a search under a selective filter, so enough accepted ids are still reached."""
    if fraction >= 0.9:  # a few tombstones: not worth a wider search
        return base
    factor = min(MAX_FILTER_BOOST, 1.0 / max(fraction, 1e-9))
    return max(1, min(cap, math.ceil(base * factor)))


class _FaissIndex:
    """What every FAISS-backed index shares: validation, ``search`` and bytes."""

    dim: int
    spec: IndexSpec
    _index: Any  # faiss' SWIG classes are untyped

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add (or replace) vectors under ids."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return
        matrix = as_matrix(vectors, self.dim)
        self.remove(ids)
        self._index.add_with_ids(matrix, ids)

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids; absent ones are ignored. Each index type removes its own way."""
        raise NotImplementedError

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product, optionally only over ``allowed`` ids."""
        matrix = as_matrix(queries, self.dim)
        if allowed is None:
            return self.search_selected(matrix, k, None)
        allowed = np.unique(np.asarray(allowed, dtype=np.int64))
        if not len(allowed):
            return no_hits(len(matrix))
        selector = faiss.IDSelectorBatch(allowed)
        return self.search_selected(matrix, k, selector, len(allowed) / max(len(self), 1))

    def search_selected(
        self, queries: np.ndarray, k: int, selector: Any, fraction: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k over the ids ``selector`` accepts (None: all)."""
        matrix = as_matrix(queries, self.dim)
        if not len(self) or k <= 0:
            return no_hits(len(matrix))
        k = min(k, len(self))
        params, _keep = self._params(selector, fraction, k)  # _keep: selectors params point to
        if params is None:
            return self._index.search(matrix, k)
        return self._index.search(matrix, k, params=params)

    def _params(self, selector: Any, fraction: float, k: int) -> tuple[Any, tuple[Any, ...]]:
        if selector is None:
            return None, ()
        params = _faiss.SearchParameters()
        params.sel = selector
        return params, (selector,)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Reconstruct stored vectors by id."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return np.zeros((0, self.dim), np.float32)
        return np.asarray(self._index.reconstruct_batch(ids), dtype=np.float32)

    def write(self, path: Path) -> None:
        """Write the FAISS index file (streamed: no copy of the index in memory)."""
        faiss.write_index(self._index, str(path))

    def state(self) -> dict[str, Any]:
        """Nothing beyond the FAISS bytes."""
        return {}

    @property
    def faiss_index(self) -> faiss.Index:
        """The underlying FAISS index."""
        return self._index


class FlatIndex(_FaissIndex):
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


class HNSWIndex(_FaissIndex):
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
            ef = _boost(ef, fraction, 16 * ef)
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


class IVFIndex(_FaissIndex):
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
            nprobe = _boost(nprobe, fraction, self.spec.nlist)
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


_FAISS_TYPES: dict[str, type] = {  # what a snapshot file of each kind must hold
    "flat": faiss.IndexFlat,
    "hnsw": faiss.IndexHNSWFlat,
    "ivf-flat": faiss.IndexIVFFlat,
    "ivf-sq8": faiss.IndexIVFScalarQuantizer,
    "ivf-pq": faiss.IndexIVFPQ,
}


def new_index(spec: IndexSpec, dim: int) -> FlatIndex | HNSWIndex | IVFIndex:
    """An empty index of a spec (IVF ones still need ``train``)."""
    if spec.kind == "flat":
        return FlatIndex(dim)
    if spec.kind == "hnsw":
        return HNSWIndex(dim, spec)
    return IVFIndex(dim, spec)


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
