"""Every index type behind ``VectorIndex``, one congruent suite: ids, replace, remove,
filters, vectors by id, snapshot files, memory, and recall against exact search."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import faiss
import numpy as np
import pytest

from latent.errors import DimensionMismatch
from latent.index.base import VectorIndex
from latent.index.build import build_index
from latent.index.flat import FlatIndex
from latent.index.hnsw import HNSWIndex
from latent.index.ivf import IVFIndex
from latent.index.layers import IVF_SEGMENT_MIN, LayeredIndex
from latent.index.policy import KINDS, IndexSpec, complete
from latent.index.snapshot import read_index

DIM = 32
# How closely each type gives stored vectors back (SQ8 and PQ store codes, not floats).
VECTOR_TOLERANCE = {"flat": 1e-6, "hnsw": 1e-6, "ivf-flat": 1e-6, "ivf-sq8": 0.02, "ivf-pq": 0.35}
# Recall@10 against exact search at 20k clustered vectors; PQ (8 dims per byte here)
# trades recall for 16x less memory, and its build records what it reaches.
RECALL_FLOOR = {"flat": 1.0, "hnsw": 0.95, "ivf-flat": 0.95, "ivf-sq8": 0.95, "ivf-pq": 0.5}


def clustered(n: int, dim: int = DIM, seed: int = 0, centers: int = 64) -> np.ndarray:
    """Unit vectors around ``centers`` fixed random directions (like a library's embeddings).

    Every seed draws other points around the same centres, so one seed's points are
    realistic queries for another's.
    """
    middle = np.random.default_rng(12345).standard_normal((centers, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    x = middle[rng.integers(0, centers, n)] + rng.standard_normal((n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_top(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Ids of the exact top-k by inner product."""
    _, rows = faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)
    return ids[rows]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the exact top-k that was found."""
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


@cache  # trained once per kind and size; tests work on copies
def built(kind: str, n: int = 2_000, seed: int = 0) -> tuple[VectorIndex, np.ndarray, np.ndarray]:
    """An index of ``kind`` over n clustered vectors with sparse ids (tuned as in production)."""
    vectors = clustered(n, seed=seed)
    ids = np.arange(n, dtype=np.int64) * 7 + 1000
    return build_index(complete(IndexSpec(kind), n, DIM), ids, vectors), ids, vectors


@pytest.fixture(scope="module", params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """Each index type in turn."""
    return str(request.param)


@pytest.fixture(scope="module")
def prototype(kind: str) -> tuple[VectorIndex, np.ndarray, np.ndarray]:
    """One trained index per kind (training is the slow part)."""
    return built(kind)


@pytest.fixture
def index(prototype: tuple[VectorIndex, np.ndarray, np.ndarray]) -> tuple:
    """A private copy of the kind's index, with its ids and vectors."""
    idx, ids, vectors = prototype
    return idx.copy(), ids, vectors


def test_each_kind_is_what_it_says(
    index: tuple[VectorIndex, np.ndarray, np.ndarray], kind: str
) -> None:
    idx, ids, _ = index
    assert idx.spec.kind == kind
    assert isinstance(idx, {"flat": FlatIndex, "hnsw": HNSWIndex}.get(kind, IVFIndex))
    assert len(idx) == len(ids)
    assert sorted(idx.ids().tolist()) == ids.tolist()


def test_vectors_by_id_and_matrix_agree(index: tuple, kind: str) -> None:
    idx, ids, vectors = index
    pick = np.array([5, 0, 1999, 42])
    np.testing.assert_allclose(idx.vectors(ids[pick]), vectors[pick], atol=VECTOR_TOLERANCE[kind])
    order = np.argsort(idx.ids())
    np.testing.assert_allclose(idx.matrix()[order], vectors, atol=VECTOR_TOLERANCE[kind])


def test_replace_keeps_one_vector_per_id(index: tuple, kind: str) -> None:
    idx, ids, vectors = index
    target = ids[3]
    new = vectors[1500:1501]
    idx.add(np.array([target]), new)
    assert len(idx) == len(ids)
    np.testing.assert_allclose(idx.vectors(np.array([target])), new, atol=VECTOR_TOLERANCE[kind])
    _, found = idx.search(new, 2)
    assert target in found[0].tolist()  # the replaced vector answers for the id
    assert list(idx.ids()).count(target) == 1


def test_removed_ids_are_never_returned(index: tuple, kind: str) -> None:
    idx, ids, vectors = index
    gone = ids[:100]
    assert idx.remove(np.concatenate([gone, [-5, 10**12]])) == 100
    assert idx.remove(gone) == 0
    assert len(idx) == len(ids) - 100
    _, found = idx.search(vectors[:100], 10)
    assert not set(found.ravel().tolist()) & set(gone.tolist())
    assert not set(idx.ids().tolist()) & set(gone.tolist())


def test_allowed_ids_restrict_the_search(index: tuple, kind: str) -> None:
    idx, ids, vectors = index
    allowed = ids[::2]  # half the collection: the ANN path with a FAISS selector
    queries = clustered(50, seed=9)
    _, found = idx.search(queries, 10, allowed=allowed)
    assert set(found.ravel().tolist()) <= set(allowed.tolist())
    truth = exact_top(vectors[::2], allowed, queries, 10)
    assert recall(found, truth) >= RECALL_FLOOR[kind] - 0.05
    assert idx.search(queries, 10, allowed=np.zeros(0, np.int64))[1].shape == (50, 0)


def test_a_selective_filter_is_exact_in_the_served_view(index: tuple, kind: str) -> None:
    idx, ids, vectors = index
    view = LayeredIndex.of(idx, 0)
    allowed = ids[[3, 400, 401, 1200, 1999]]
    scores, found = view.search(vectors[400], 10, allowed=allowed)
    assert found.shape == (1, 5)  # every allowed id, none missed by lists or graph
    assert found[0][0] == ids[400]
    assert set(found[0].tolist()) == set(allowed.tolist())
    assert (np.diff(scores[0]) <= 1e-6).all()


def test_copy_is_independent(index: tuple) -> None:
    idx, ids, _ = index
    twin = idx.copy()
    twin.remove(ids[:10])
    assert len(twin) == len(ids) - 10 and len(idx) == len(ids)


def test_snapshot_file_round_trip(index: tuple, kind: str, tmp_path: Path) -> None:
    idx, ids, vectors = index
    idx.remove(ids[:3])  # HNSW keeps these as tombstones: they must survive too
    idx.write(tmp_path / "x.faiss")
    again = read_index(idx.spec, DIM, tmp_path / "x.faiss", idx.state())
    assert type(again) is type(idx) and again.spec == idx.spec
    assert sorted(again.ids().tolist()) == sorted(idx.ids().tolist())
    queries = clustered(20, seed=3)
    np.testing.assert_array_equal(again.search(queries, 10)[1], idx.search(queries, 10)[1])
    with pytest.raises(ValueError):
        read_index(IndexSpec("hnsw" if kind != "hnsw" else "flat"), DIM, tmp_path / "x.faiss")


@pytest.mark.parametrize("kind", ["ivf-flat", "ivf-sq8", "ivf-pq"])
def test_a_burst_of_changes_over_ivf_is_searched_through_lists(kind: str) -> None:
    idx, ids, vectors = built(kind)
    burst = clustered(IVF_SEGMENT_MIN, seed=4)
    burst_ids = np.arange(IVF_SEGMENT_MIN, dtype=np.int64) + 10**6
    view = LayeredIndex.of(idx, 0).apply(ids[:5], burst_ids, burst)
    segment = view.layers[-1].index
    assert isinstance(segment, IVFIndex) and len(segment) == IVF_SEGMENT_MIN
    # Trained like the base: the same codes, so the same vectors come back.
    twin = idx.copy()
    twin.add(burst_ids[:50], burst[:50])
    np.testing.assert_array_equal(segment.vectors(burst_ids[:50]), twin.vectors(burst_ids[:50]))
    assert len(view) == len(ids) - 5 + IVF_SEGMENT_MIN
    queries = clustered(50, seed=5)
    found = view.search(queries, 10)[1]
    truth = exact_top(
        np.concatenate([vectors[5:], burst]), np.concatenate([ids[5:], burst_ids]), queries, 10
    )
    assert recall(found, truth) >= RECALL_FLOOR[kind] - 0.05


def test_memory_per_vector_orders_the_types() -> None:
    per_vector = {kind: built(kind)[0].memory_bytes() / len(built(kind)[0]) for kind in KINDS}
    assert per_vector["ivf-sq8"] < per_vector["ivf-flat"] / 2
    assert per_vector["ivf-pq"] < per_vector["ivf-sq8"]
    assert per_vector["hnsw"] > per_vector["flat"]  # links on top of the float vectors


@pytest.mark.slow
def test_recall_at_20k_against_exact(kind: str) -> None:
    idx, ids, vectors = built(kind, n=20_000, seed=1)
    queries = clustered(300, seed=2)
    found = idx.search(queries, 10)[1]
    measured = recall(found, exact_top(vectors, ids, queries, 10))
    assert measured >= RECALL_FLOOR[kind], idx.spec.describe()
    if kind != "flat":
        assert idx.spec.recall is not None and idx.spec.recall > RECALL_FLOOR[kind] - 0.1


def test_wrong_dimension_is_refused() -> None:
    with pytest.raises(DimensionMismatch):
        FlatIndex(16).add(np.array([1]), np.ones((1, 8), np.float32))


def test_empty_index_returns_no_hits() -> None:
    scores, ids = FlatIndex(4).search(np.ones(4, np.float32), 5)
    assert scores.shape == ids.shape == (1, 0)
