"""An immutable read view of a collection's index: a large base, small delta segments, tombstones.

    LayeredIndex
    ├── base layer   the trained (or large exact) index; never mutated once published
    ├── segments     delta layers, one per applied change batch, compacted so that
    │                there are O(log n) of them: exact FlatIndex ones, or (large ones
    │                over an IVF base) IVF lists sharing the base's training
    └── tombstones   per layer, the ids removed or replaced since that layer was made

Applying a change batch makes a new view that shares every FAISS index with the old
one (only tombstone sets and one small segment are new), so a refresh costs O(batch),
never a copy of the base. ``fold`` makes the next base off the request path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

from latent.index.base import VectorIndex, as_matrix, member, no_hits
from latent.index.flat import FlatIndex
from latent.index.ivf import IVFIndex
from latent.index.policy import IndexSpec

EXACT_FILTER_LIMIT = 2048  # a filter admitting at most this many ids of a layer: exact scores
MAX_SEGMENTS = 12
# A delta segment this large over an IVF base gets inverted lists trained like the base's,
# so a burst of changes (100k vectors at once) does not make every search scan it whole.
IVF_SEGMENT_MIN = 10_000


@dataclass(frozen=True, eq=False)
class Layer:
    """One index of a view, the sorted ids it stores and the sorted ids masked out."""

    index: VectorIndex
    stored: np.ndarray
    dead: np.ndarray
    skip: tuple[Any, ...] = ()  # (IDSelectorBatch(dead), IDSelectorNot(it)) when dead

    @classmethod
    def of(cls, index: VectorIndex, dead: np.ndarray | None = None) -> Layer:
        """A layer over an index (its ids sorted once, here)."""
        return cls.make(
            index, np.sort(index.ids()), np.zeros(0, np.int64) if dead is None else dead
        )

    @classmethod
    def make(cls, index: VectorIndex, stored: np.ndarray, dead: np.ndarray) -> Layer:
        """A layer with its tombstone selector built once, shared by every search."""
        if not len(dead):
            return cls(index, stored, dead)
        batch = faiss.IDSelectorBatch(dead)
        return cls(index, stored, dead, (batch, faiss.IDSelectorNot(batch)))

    @property
    def live(self) -> int:
        """Vectors of this layer that reads see."""
        return len(self.stored) - len(self.dead)

    def holds(self, ids: np.ndarray) -> np.ndarray:
        """Which ids this layer serves (stored and not tombstoned)."""
        return member(self.stored, ids) & ~member(self.dead, ids)

    def kill(self, touched: np.ndarray) -> Layer:
        """This layer with ``touched`` ids tombstoned (itself when none is stored here)."""
        hits = touched[self.holds(touched)]
        if not len(hits):
            return self
        return Layer.make(self.index, self.stored, np.union1d(self.dead, hits))

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of this layer's live vectors, optionally among ``allowed`` ids."""
        if allowed is None:
            if not len(self.dead):
                return self.index.search_selected(queries, k, None)
            return self.index.search_selected(
                queries, k, self.skip[1], self.live / len(self.stored)
            )
        mine = allowed[self.holds(allowed)]
        if not len(mine):
            return no_hits(len(queries))
        if len(mine) <= EXACT_FILTER_LIMIT:
            # A selective filter defeats IVF lists and HNSW graphs; scoring its few ids
            # exactly is cheaper and misses nothing.
            return _exact(queries, k, mine, self.index.vectors(mine))
        selector = faiss.IDSelectorBatch(mine)
        return self.index.search_selected(queries, k, selector, len(mine) / len(self.stored))

    def live_ids(self) -> np.ndarray:
        """Live ids in storage order."""
        ids = self.index.ids()
        return ids[~member(self.dead, ids)] if len(self.dead) else ids

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """Live (ids, vectors) in storage order."""
        ids, matrix = self.index.ids(), self.index.matrix()
        if not len(self.dead):
            return ids, matrix
        keep = ~member(self.dead, ids)
        return ids[keep], matrix[keep]


def _exact(
    queries: np.ndarray, k: int, ids: np.ndarray, vectors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    scores = queries @ vectors.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, : min(k, len(ids))]
    return np.take_along_axis(scores, top, 1).astype(np.float32), ids[top]


class LayeredIndex:
    """The read API of ``VectorIndex`` over a base, delta segments and tombstones.

    Immutable: ``apply`` returns a new view. ``base_seq`` is the change-log seq the
    base layer reflects (what a snapshot of the base records).
    """

    def __init__(self, dim: int, layers: tuple[Layer, ...], base_seq: int) -> None:
        self.dim = dim
        self.layers = layers
        self.base_seq = base_seq
        self._len = sum(layer.live for layer in layers)

    @classmethod
    def of(cls, base: VectorIndex, base_seq: int) -> LayeredIndex:
        """A view of just a base index."""
        return cls(base.dim, (Layer.of(base),), base_seq)

    @property
    def base(self) -> Layer:
        """The base layer."""
        return self.layers[0]

    @property
    def spec(self) -> IndexSpec:
        """The base index's type and parameters."""
        return self.base.index.spec

    @property
    def pending(self) -> int:
        """Delta vectors plus base tombstones: what folding into a new base would absorb."""
        return sum(layer.live for layer in self.layers[1:]) + len(self.base.dead)

    @property
    def description(self) -> str:
        """The served index in words, e.g. ``ivf-flat(nlist=1265, nprobe=12) + 3 pending ...``."""
        text = self.spec.describe()
        if self.pending:
            text += f" + {self.pending} pending in {len(self.layers) - 1} segments"
        return text

    def __len__(self) -> int:
        return self._len

    def memory_bytes(self) -> int:
        """Estimated resident bytes of every layer."""
        return sum(layer.index.memory_bytes() for layer in self.layers)

    def bytes_per_vector(self) -> float:
        """Estimated resident bytes per live vector (0 when empty)."""
        return self.memory_bytes() / len(self) if len(self) else 0.0

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row over every layer; missing slots have id -1.

        ``allowed`` (int64 ids) restricts the search to those ids.
        """
        matrix = as_matrix(queries, self.dim)
        if not len(self) or k <= 0:
            return no_hits(len(matrix))
        if allowed is not None:
            allowed = np.unique(np.asarray(allowed, dtype=np.int64))
        parts = [layer.search(matrix, k, allowed) for layer in self.layers if layer.live]
        if len(parts) == 1:
            return parts[0]
        scores = np.concatenate([p[0] for p in parts], axis=1)
        ids = np.concatenate([p[1] for p in parts], axis=1)
        top = np.argsort(-scores, axis=1, kind="stable")[:, : min(k, len(self))]
        return np.take_along_axis(scores, top, 1), np.take_along_axis(ids, top, 1)

    def ids(self) -> np.ndarray:
        """Every live id (layer by layer, in storage order)."""
        return np.concatenate([np.zeros(0, np.int64)] + [layer.live_ids() for layer in self.layers])

    def matrix(self) -> np.ndarray:
        """Every live vector in the order of ``ids()`` (a view when only a clean flat base)."""
        parts = [layer.items()[1] for layer in self.layers if layer.live]
        if len(parts) == 1:
            return parts[0]
        return np.concatenate([np.zeros((0, self.dim), np.float32), *parts])

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The vectors of the ids that are live, in the given order (absent ones dropped)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        out = np.zeros((len(ids), self.dim), np.float32)
        found = np.zeros(len(ids), bool)
        for layer in self.layers:
            mask = ~found & layer.holds(ids)
            if mask.any():
                out[mask] = layer.index.vectors(ids[mask])
                found |= mask
        return out[found]

    def apply(
        self, removed: np.ndarray, added_ids: np.ndarray, added_vectors: np.ndarray
    ) -> LayeredIndex:
        """A new view with ``removed`` gone and ``added`` present (replacing same ids).

        Costs O(batch + tombstones): layers whose ids are untouched are shared.
        """
        touched = np.unique(np.concatenate([np.asarray(removed, np.int64), added_ids]))
        layers = [layer.kill(touched) for layer in self.layers]
        base = layers[0]
        if len(added_ids):
            layers.append(Layer.of(_segment(base.index, added_ids, added_vectors)))
        return LayeredIndex(self.dim, (base, *_compact(base.index, layers[1:])), self.base_seq)

    def fold(self) -> VectorIndex:
        """A new independent base: a copy of the base without its tombstones, plus the delta.

        Slow (copies the base): run it off the request path.
        """
        index = self.base.index.copy()
        if len(self.base.dead):
            index.remove(self.base.dead)
        for layer in self.layers[1:]:
            if layer.live:
                index.add(*layer.items())
        return index


def _segment(base: VectorIndex, ids: np.ndarray, vectors: np.ndarray) -> VectorIndex:
    """A delta segment holding ``vectors``: exact, or IVF lists like the base's when large."""
    segment: VectorIndex
    if isinstance(base, IVFIndex) and len(ids) >= IVF_SEGMENT_MIN:
        segment = base.empty_like()
    else:
        segment = FlatIndex(base.dim)
    segment.add(ids, vectors)
    return segment


def _compact(base: VectorIndex, segments: list[Layer]) -> list[Layer]:
    """Merge the newest segments while they are not much smaller than the one before.

    Sizes then roughly double from newest to oldest, so there are O(log n) segments and
    each delta vector is copied O(log n) times before the next fold.
    """
    segments = [s for s in segments if s.live]
    while len(segments) >= 2 and (
        segments[-2].live <= 2 * segments[-1].live or len(segments) > MAX_SEGMENTS
    ):
        parts = [layer.items() for layer in segments[-2:]]
        ids = np.concatenate([p[0] for p in parts])
        vectors = np.concatenate([p[1] for p in parts])
        segments[-2:] = [Layer.of(_segment(base, ids, vectors))]
    return segments
