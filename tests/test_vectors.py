"""The exact FAISS index against brute force, with stable ids, replace, remove and copy."""

from __future__ import annotations

import numpy as np
import pytest

from latent.errors import DimensionMismatch
from latent.vectors import FlatIndex


def _unit(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_search_matches_brute_force() -> None:
    vectors, ids = _unit(500), np.arange(1000, 1500, dtype=np.int64)
    index = FlatIndex(16)
    index.add(ids, vectors)
    queries = _unit(20, seed=1)
    scores, found = index.search(queries, 10)
    expected = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    assert (found == ids[expected]).all()
    np.testing.assert_allclose(
        scores, np.take_along_axis(queries @ vectors.T, expected, 1), atol=1e-5
    )


def test_replace_remove_and_copy_are_independent() -> None:
    index = FlatIndex(16)
    v = _unit(3)
    index.add(np.array([1, 2, 3]), v)
    index.add(np.array([2]), v[2:3])  # replacing keeps one vector per id
    assert len(index) == 3 and sorted(index.ids().tolist()) == [1, 2, 3]
    copy = index.copy()
    assert copy.remove(np.array([1, 99])) == 1
    assert len(copy) == 2 and len(index) == 3
    _, found = copy.search(v[0], 3)
    assert 1 not in found[0].tolist()


def test_wrong_dimension_is_refused() -> None:
    with pytest.raises(DimensionMismatch):
        FlatIndex(16).add(np.array([1]), np.ones((1, 8), np.float32))


def test_empty_index_returns_no_hits() -> None:
    scores, ids = FlatIndex(4).search(np.ones(4, np.float32), 5)
    assert scores.shape == ids.shape == (1, 0)
