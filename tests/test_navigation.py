"""Tests of the latent navigation maths: paths, directions, shaping and density."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from latent.errors import DimensionMismatch, InvalidArgument
from latent.query.navigation import (
    DensityReport,
    collapse_near_duplicates,
    cosine_matrix,
    density_report,
    direction_from_examples,
    interpolate,
    mmr,
    principal_components,
    snap_to_neighbours,
    traverse,
    typical_knn_similarity,
)

DIM = 16


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def random_units(n: int, d: int = DIM, seed: int = 0) -> np.ndarray:
    return unit(np.random.default_rng(seed).normal(size=(n, d)))


def clustered(n_clusters: int, per: int, d: int = DIM, spread: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(1)
    centres = unit(rng.normal(size=(n_clusters, d)))
    return unit(np.repeat(centres, per, axis=0) + spread * rng.normal(size=(n_clusters * per, d)))


vectors = arrays(np.float64, DIM, elements=st.floats(-1, 1)).filter(
    lambda v: np.linalg.norm(v) > 1e-2
)


# --- interpolate -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(a=vectors, b=vectors, steps=st.integers(2, 30))
def test_slerp_endpoints_norms_and_monotone_approach(a, b, steps):
    path = interpolate(a, b, steps)
    ts = [t for t, _ in path]
    points = np.stack([p for _, p in path])
    assert len(path) == steps and ts[0] == 0.0 and ts[-1] == 1.0
    assert np.all(np.diff(ts) > 0)
    assert np.allclose(np.linalg.norm(points, axis=1), 1.0, atol=1e-5)
    assert np.allclose(points[0], unit(a), atol=1e-5)
    assert np.allclose(points[-1], unit(b), atol=1e-4)
    to_b = points.astype(np.float64) @ unit(b).astype(np.float64)
    assert np.all(np.diff(to_b) >= -1e-5)


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["identical", "antipodal"])
def test_slerp_degenerate_pairs_stay_finite_and_unit(sign):
    a = random_units(1)[0]
    path = interpolate(a, sign * a, 7)
    points = np.stack([p for _, p in path])
    assert np.all(np.isfinite(points))
    assert np.allclose(np.linalg.norm(points, axis=1), 1.0, atol=1e-5)
    assert np.allclose(points[-1], sign * a, atol=1e-5)
    if sign < 0:  # the antipodal path goes round, through a point orthogonal to both
        assert abs(float(points[3] @ a)) < 1e-5


def test_slerp_moves_at_constant_angle():
    a, b = random_units(2, seed=3)
    points = np.stack([p for _, p in interpolate(a, b, 9)])
    gaps = np.arccos(np.clip(np.sum(points[1:] * points[:-1], axis=1), -1, 1))
    assert np.allclose(gaps, gaps[0], atol=1e-3)


def test_lerp_is_normalised_linear_mix_and_refuses_the_origin():
    a, b = random_units(2, seed=4)
    t, mid = interpolate(a, b, 3, method="lerp")[1]
    assert t == 0.5
    assert np.allclose(mid, unit(a + b), atol=1e-6)
    with pytest.raises(InvalidArgument, match="slerp"):
        interpolate(a, -a, 3, method="lerp")


@pytest.mark.parametrize("steps", [1, 101])
def test_interpolate_rejects_step_counts(steps):
    a, b = random_units(2)
    with pytest.raises(InvalidArgument, match="steps"):
        interpolate(a, b, steps)


def test_interpolate_rejects_bad_vectors():
    a, b = random_units(2)
    with pytest.raises(InvalidArgument, match="NaN"):
        interpolate(np.full(DIM, np.nan), b, 3)
    with pytest.raises(InvalidArgument, match="zero"):
        interpolate(np.zeros(DIM), b, 3)
    with pytest.raises(DimensionMismatch):
        interpolate(a, b[:-1], 3)
    with pytest.raises(InvalidArgument, match="method"):
        interpolate(a, b, 3, method="cubic")  # type: ignore[arg-type]


# --- traverse ----------------------------------------------------------------------------


def test_traverse_walks_origin_plus_t_direction():
    origin = random_units(1, seed=5)[0]
    direction = 0.5 * random_units(1, seed=6)[0]
    walk = traverse(origin, direction, step=0.25, steps=5)
    assert [t for t, _ in walk] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert np.allclose(walk[0][1], unit(origin), atol=1e-6)
    assert np.allclose(walk[4][1], unit(origin + direction), atol=1e-6)
    along = [float(p @ unit(direction)) for _, p in walk]
    assert along == sorted(along)


def test_traverse_negative_step_walks_backwards():
    origin, direction = random_units(2, seed=7)
    walk = traverse(origin, direction, step=-0.5, steps=3)
    assert [t for t, _ in walk] == [0.0, -0.5, -1.0]
    assert np.allclose(walk[2][1], unit(origin - direction), atol=1e-6)


def test_traverse_rejects_bad_input():
    origin, direction = random_units(2)
    with pytest.raises(InvalidArgument, match="zero"):
        traverse(origin, np.zeros(DIM), 0.1, 3)
    with pytest.raises(InvalidArgument, match="steps"):
        traverse(origin, direction, 0.1, 0)
    with pytest.raises(InvalidArgument, match="steps"):
        traverse(origin, direction, 0.1, 101)
    with pytest.raises(InvalidArgument, match="finite"):
        traverse(origin, direction, float("inf"), 3)
    with pytest.raises(InvalidArgument, match="t=1"):  # lands exactly on the origin
        traverse(origin, -origin, 1.0, 3)


# --- principal components ---------------------------------------------------------------


def test_pca_recovers_the_dominant_axis():
    rng = np.random.default_rng(8)
    axis = unit(rng.normal(size=DIM))
    data = 5.0 * rng.normal(size=(2000, 1)) * axis + 0.3 * rng.normal(size=(2000, DIM)) + 2.0
    pcs = principal_components(data, 3)
    assert pcs.shape == (3, DIM) and pcs.dtype == np.float32
    assert abs(float(pcs[0] @ axis)) > 0.99
    assert np.allclose(pcs @ pcs.T, np.eye(3), atol=1e-5)


def test_pca_sign_is_deterministic():
    data = clustered(4, 50)
    pcs = principal_components(data, 2)
    flipped = principal_components(-data, 2)
    assert np.array_equal(pcs, flipped)
    for row in pcs:
        assert row[np.argmax(np.abs(row))] > 0


def test_pca_samples_large_inputs(monkeypatch):
    monkeypatch.setattr("latent.query.navigation.PCA_SAMPLE_ROWS", 500)
    data = clustered(3, 1000)
    first, second = principal_components(data, 2), principal_components(data, 2)
    assert np.array_equal(first, second)
    assert abs(float(first[0] @ principal_components(data[:2999], 2)[0])) > 0.95


def test_pca_rejects_bad_k():
    with pytest.raises(InvalidArgument, match="k"):
        principal_components(random_units(10), DIM + 1)
    with pytest.raises(InvalidArgument, match="empty"):
        principal_components(np.zeros((0, DIM)), 1)


# --- directions ---------------------------------------------------------------------------


def test_direction_is_difference_of_means():
    pos, neg = random_units(4, seed=9), random_units(3, seed=10)
    direction = direction_from_examples(pos, neg)
    assert np.allclose(direction, pos.mean(0) - neg.mean(0), atol=1e-6)
    assert np.allclose(direction_from_examples(pos, np.zeros((0, DIM))), pos.mean(0), atol=1e-6)
    assert np.allclose(direction_from_examples(np.zeros((0, DIM)), neg), -neg.mean(0), atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n_orth=st.integers(1, 4))
def test_direction_is_orthogonal_to_the_given_directions(seed, n_orth):
    pos, neg = random_units(5, seed=seed), random_units(5, seed=seed + 1)
    others = list(2.0 * random_units(n_orth, seed=seed + 2))
    others.append(others[0] + others[-1])  # dependent: spans nothing new
    direction = direction_from_examples(pos, neg, orthogonal_to=others)
    assert np.all(np.abs(cosine_matrix(direction, np.stack(others))) < 1e-5)
    assert np.linalg.norm(direction) > 1e-3


def test_direction_rejects_nothing_and_zero():
    empty = np.zeros((0, DIM))
    with pytest.raises(InvalidArgument, match="at least one"):
        direction_from_examples(empty, empty)
    same = random_units(3)
    with pytest.raises(InvalidArgument, match="zero"):
        direction_from_examples(same, same)
    pos, neg = random_units(1, seed=1), random_units(1, seed=2)
    with pytest.raises(InvalidArgument, match="zero"):
        direction_from_examples(pos, neg, orthogonal_to=[pos[0] - neg[0]])
    with pytest.raises(DimensionMismatch):
        direction_from_examples(pos, neg, orthogonal_to=[np.ones(DIM + 1)])


# --- cosine, MMR, dedup ---------------------------------------------------------------------


def test_cosine_matrix_normalises_and_zero_rows_give_zero():
    a = np.array([[3.0, 0.0], [0.0, 0.0]])
    b = np.array([[1.0, 1.0], [0.0, -2.0]])
    expected = np.array([[np.sqrt(0.5), 0.0], [0.0, 0.0]])
    assert np.allclose(cosine_matrix(a, b), expected, atol=1e-6)
    assert cosine_matrix(np.ones(2), b).shape == (1, 2)


def test_mmr_without_diversity_is_relevance_order():
    query, candidates = random_units(1, seed=11)[0], random_units(30, seed=12)
    relevance = candidates @ query
    assert mmr(query, candidates, 10, 0.0) == list(np.argsort(-relevance)[:10])


def test_mmr_with_diversity_avoids_near_duplicates():
    rng = np.random.default_rng(13)
    query = random_units(1, seed=14)[0]
    best = unit(query + 0.3 * rng.normal(size=DIM))
    twins = unit(best + 0.01 * rng.normal(size=(5, DIM)))  # near-copies of the best hit
    others = unit(query + 0.8 * rng.normal(size=(5, DIM)))
    candidates = np.vstack([best, twins, others])
    plain = mmr(query, candidates, 3, 0.0)
    diverse = mmr(query, candidates, 3, 1.0)
    assert set(plain) <= set(range(6))  # relevance alone picks the twins
    assert diverse[0] == plain[0]
    assert all(i >= 6 for i in diverse[1:])


def test_mmr_bounds():
    query, candidates = random_units(1)[0], random_units(4)
    assert sorted(mmr(query, candidates, 10, 0.5)) == [0, 1, 2, 3]
    assert mmr(query, np.zeros((0, DIM)), 3, 0.5) == []
    for diversity in (-0.1, 1.1):
        with pytest.raises(InvalidArgument, match="diversity"):
            mmr(query, candidates, 3, diversity)
    with pytest.raises(InvalidArgument, match="k"):
        mmr(query, candidates, 0, 0.5)


def test_collapse_drops_exact_and_near_duplicates_keeping_rank_order():
    base = random_units(4, seed=15)
    candidates = np.vstack([base[0], base[1], base[0], 2 * base[1], base[2], base[3], base[2]])
    assert collapse_near_duplicates(candidates, 1.0) == [0, 1, 4, 5]
    near = np.vstack([base[0], unit(base[0] + 0.05 * base[1]), base[1]])
    assert collapse_near_duplicates(near, 0.99) == [0, 2]
    assert collapse_near_duplicates(near, 1.0) == [0, 1, 2]


@pytest.mark.parametrize("threshold", [0.0, -0.5, 1.01])
def test_collapse_rejects_thresholds(threshold):
    with pytest.raises(InvalidArgument, match="threshold"):
        collapse_near_duplicates(random_units(3), threshold)


# --- density --------------------------------------------------------------------------------


def neighbour_sims(query: np.ndarray, stored: np.ndarray, k: int) -> np.ndarray:
    return np.sort(stored @ query)[::-1][:k]


def test_density_flags_a_hole_and_not_a_stored_point():
    stored = clustered(8, 40)
    typical = typical_knn_similarity(stored, k=10)
    assert 0.5 < typical <= 1.0
    far = unit(-stored.mean(axis=0))  # away from every cluster
    hole = density_report(neighbour_sims(far, stored, 10), typical)
    assert isinstance(hole, DensityReport) and hole.is_hole and hole.ratio < 0.8
    # A stored point's neighbours include itself, as a search would return them.
    home = density_report(neighbour_sims(stored[17], stored, 10), typical)
    assert not home.is_hole and home.ratio > 0.9
    assert home.typical_similarity == typical
    assert home.knn_similarity == pytest.approx(
        float(neighbour_sims(stored[17], stored, 10).mean())
    )


def test_typical_knn_similarity_excludes_self_and_handles_small_n():
    stored = random_units(50, seed=16)
    exact = np.sort(stored @ stored.T, axis=1)[:, ::-1][:, 1:4].mean()
    assert typical_knn_similarity(stored, k=3, sample=1000) == pytest.approx(exact, abs=1e-5)
    twins = np.vstack([stored[:3], stored[:3]])  # every vector has an exact twin
    assert typical_knn_similarity(twins, k=1) == pytest.approx(1.0, abs=1e-5)
    pair = random_units(2, seed=17)
    assert typical_knn_similarity(pair, k=10) == pytest.approx(float(pair[0] @ pair[1]), abs=1e-5)
    assert typical_knn_similarity(stored, k=3, sample=10, seed=1) == typical_knn_similarity(
        stored, k=3, sample=10, seed=1
    )
    with pytest.raises(InvalidArgument, match="two"):
        typical_knn_similarity(stored[:1])


def test_density_report_rejects_bad_input():
    with pytest.raises(InvalidArgument, match="neighbour"):
        density_report(np.zeros(0), 0.8)
    with pytest.raises(InvalidArgument, match="typical"):
        density_report(np.ones(3), 0.0)


def test_snap_to_neighbours_is_the_unit_centroid():
    neighbours = random_units(5, seed=18)
    snapped = snap_to_neighbours(3.0 * neighbours)
    assert np.allclose(snapped, unit(neighbours.mean(axis=0)), atol=1e-6)
    with pytest.raises(InvalidArgument, match="zero"):
        snap_to_neighbours(np.vstack([neighbours[0], -neighbours[0]]))
