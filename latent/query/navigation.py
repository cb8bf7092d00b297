"""Latent navigation maths: interpolation, traversal, directions, result shaping, density."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import faiss
import numpy as np

from latent.errors import DimensionMismatch, InvalidArgument
from latent.linalg import unit_or_zero, unit_rows

MAX_STEPS = 100
PCA_SAMPLE_ROWS = 100_000
PCA_SEED = 0
_EPS = 1e-6

Points = list[tuple[float, np.ndarray]]


def _finite(x: np.ndarray, name: str, dtype: type = np.float64) -> np.ndarray:
    arr: np.ndarray = np.asarray(x, dtype=dtype)
    if not np.all(np.isfinite(arr)):
        raise InvalidArgument(f"{name} contains NaN or infinite values")
    return arr


def _vector(x: np.ndarray, name: str) -> np.ndarray:
    arr = _finite(x, name)
    if arr.ndim != 1 or arr.size == 0:
        raise InvalidArgument(f"{name} must be a non-empty 1-D vector, got shape {arr.shape}")
    return arr


def _matrix(
    x: np.ndarray, name: str, allow_empty: bool = False, dtype: type = np.float64
) -> np.ndarray:
    arr = _finite(x, name, dtype)
    if arr.ndim == 1 and arr.size > 0:
        arr = arr[None, :]
    if arr.size == 0:
        if not allow_empty:
            raise InvalidArgument(f"{name} must not be empty")
        return arr.reshape(0, arr.shape[-1] if arr.ndim == 2 else 0)
    if arr.ndim != 2:
        raise InvalidArgument(f"{name} must be a 2-D array of row vectors, got shape {arr.shape}")
    return arr


def _unit(v: np.ndarray, name: str) -> np.ndarray:
    # Stricter than linalg.unit's own check: a walk or a direction this short is noise.
    if float(np.linalg.norm(v)) < _EPS:
        raise InvalidArgument(f"{name} is (nearly) the zero vector and has no direction")
    return unit_or_zero(v)


def _same_dim(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape[-1] != b.shape[-1]:
        raise DimensionMismatch(f"{what}: dimensions differ ({a.shape[-1]} vs {b.shape[-1]})")


def _check_steps(steps: int, low: int, high: int) -> None:
    if not low <= steps <= high:
        raise InvalidArgument(f"steps must be between {low} and {high}, got {steps}")


def _orthogonal_to(a: np.ndarray) -> np.ndarray:
    """A deterministic unit vector orthogonal to unit `a` (basis axis where `a` is smallest)."""
    axis = np.zeros_like(a)
    axis[int(np.argmin(np.abs(a)))] = 1.0
    return _unit(axis - (axis @ a) * a, "orthogonal axis")


def _slerp_frame(a: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray]:
    """Angle between unit a and b, and the unit vector u ⟂ a in the plane towards b."""
    cos = float(np.clip(a @ b, -1.0, 1.0))
    rest = b - cos * a
    norm = float(np.linalg.norm(rest))
    if norm > _EPS:
        return float(np.arctan2(norm, cos)), rest / norm
    if cos > 0:
        return 0.0, _orthogonal_to(a)
    return float(np.pi), _orthogonal_to(a)


def interpolate(
    a: np.ndarray,
    b: np.ndarray,
    steps: int,
    method: Literal["lerp", "slerp"] = "slerp",
    max_steps: int = MAX_STEPS,
) -> Points:
    """Points on the way from `a` to `b`, both ends included, each of unit length.

    Slerp walks the great circle at constant angular speed; when `a` and `b` are
    (nearly) opposite, it takes a deterministic path through an axis orthogonal to `a`.
    Lerp normalises (1-t)·a + t·b and refuses a path through the origin.

    Args:
        a: Start vector (normalised here).
        b: End vector (normalised here), same dimension as `a`.
        steps: Number of points, 2 to ``max_steps``.
        method: "slerp" (default) or "lerp".
        max_steps: The most points (a server passes its configured limit).

    Returns:
        `steps` pairs (t, float32 unit vector), t from 0.0 to 1.0 inclusive.

    Raises:
        InvalidArgument: bad steps or method, zero or non-finite input, or a lerp
            through the origin (a == -b).
        DimensionMismatch: `a` and `b` differ in dimension.
    """
    _check_steps(steps, 2, max_steps)
    ua = _unit(_vector(a, "a"), "a")
    ub = _unit(_vector(b, "b"), "b")
    _same_dim(ua, ub, "interpolate")
    ts = np.linspace(0.0, 1.0, steps)
    if method == "slerp":
        omega, u = _slerp_frame(ua, ub)
        points = [np.cos(omega * t) * ua + np.sin(omega * t) * u for t in ts]
    elif method == "lerp":
        points = [_lerp_point(ua, ub, float(t)) for t in ts]
    else:
        raise InvalidArgument(f"method must be 'lerp' or 'slerp', got {method!r}")
    pairs = zip(ts, points, strict=True)
    return [(float(t), unit_or_zero(p).astype(np.float32)) for t, p in pairs]


def _lerp_point(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    p = (1.0 - t) * a + t * b
    if np.linalg.norm(p) < _EPS:
        raise InvalidArgument("lerp between opposite vectors passes through zero; use slerp")
    return p


def traverse(
    origin: np.ndarray,
    direction: np.ndarray,
    step: float,
    steps: int,
    max_steps: int = MAX_STEPS,
) -> Points:
    """Walk normalise(origin + t·direction) for t = 0, step, 2·step, ...

    The direction is used as given (not normalised): a named direction's norm is
    part of its meaning, so `step` = 1 moves by one whole direction.

    Args:
        origin: Start vector.
        direction: Direction to move along, same dimension, non-zero.
        step: Increment of t per point; negative walks the other way.
        steps: Number of points, 1 to ``max_steps``.
        max_steps: The most points (a server passes its configured limit).

    Returns:
        `steps` pairs (t, float32 unit vector).

    Raises:
        InvalidArgument: bad steps, non-finite input or step, zero direction, or a
            point that lands on the origin.
        DimensionMismatch: origin and direction differ in dimension.
    """
    _check_steps(steps, 1, max_steps)
    o = _vector(origin, "origin")
    d = _vector(direction, "direction")
    _same_dim(o, d, "traverse")
    _unit(d, "direction")
    if not np.isfinite(step):
        raise InvalidArgument("step must be a finite number")
    out: Points = []
    for i in range(steps):
        t = float(i * step)
        p = _unit(o + t * d, f"the traversal point at t={t:g}")
        out.append((t, p.astype(np.float32)))
    return out


def principal_components(vectors: np.ndarray, k: int) -> np.ndarray:
    """Top-k principal axes of the mean-centred vectors.

    At most 100,000 rows are used (a fixed-seed sample), so the cost is bounded for
    collections of millions. Each axis's sign is fixed so that its largest-magnitude
    component is positive, which makes the result deterministic.

    Args:
        vectors: (n, d) array, n >= 1.
        k: Number of axes, 1 to d.

    Returns:
        (k, d) float32 array of unit rows, by decreasing explained variance.

    Raises:
        InvalidArgument: empty or non-finite vectors, or k outside 1..d.
    """
    x = np.asarray(vectors)
    if x.ndim == 2 and x.shape[0] > PCA_SAMPLE_ROWS:  # sample before any full-size copy
        rng = np.random.default_rng(PCA_SEED)
        x = x[np.sort(rng.choice(x.shape[0], PCA_SAMPLE_ROWS, replace=False))]
    x = _matrix(x, "vectors", dtype=np.float32)
    d = x.shape[1]
    if not 1 <= k <= d:
        raise InvalidArgument(f"k must be between 1 and the dimension {d}, got {k}")
    centred = x - x.mean(axis=0, dtype=np.float64).astype(np.float32)
    _, eigvecs = np.linalg.eigh((centred.T @ centred).astype(np.float64))
    axes = eigvecs[:, ::-1][:, :k].T
    pivots = axes[np.arange(k), np.argmax(np.abs(axes), axis=1)]
    return (axes * np.where(pivots < 0, -1.0, 1.0)[:, None]).astype(np.float32)


def _orthonormal_basis(vectors: Sequence[np.ndarray], d: int) -> list[np.ndarray]:
    """Modified Gram-Schmidt; vectors already spanned by earlier ones add nothing."""
    basis: list[np.ndarray] = []
    for i, v in enumerate(vectors):
        w = _vector(v, f"orthogonal_to[{i}]")
        if w.shape[0] != d:
            raise DimensionMismatch(f"orthogonal_to[{i}] has dimension {w.shape[0]}, not {d}")
        norm = float(np.linalg.norm(w))
        for e in basis:
            w = w - (w @ e) * e
        if float(np.linalg.norm(w)) > _EPS * max(norm, 1.0):
            basis.append(unit_or_zero(w))
    return basis


def direction_from_examples(
    positive: np.ndarray,
    negative: np.ndarray,
    orthogonal_to: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """A direction: mean(positive) − mean(negative), made orthogonal to other directions.

    An empty side counts as the zero vector: with no negatives the direction is
    mean(positive) itself (pointing from the origin to the positives), and with no
    positives it is −mean(negative). The `orthogonal_to` vectors are orthonormalised
    first and their components removed, so moving along the result leaves each of
    them unchanged ("add a smile, keep the age").

    Args:
        positive: (p, d) examples of the concept; may be empty.
        negative: (q, d) examples of its absence; may be empty, but not both.
        orthogonal_to: Directions (d,) the result must not move along.

    Returns:
        The raw (not normalised) float32 direction, shape (d,).

    Raises:
        InvalidArgument: both sides empty, non-finite input, or the direction
            ends up (nearly) zero.
        DimensionMismatch: inputs differ in dimension.
    """
    pos = _matrix(positive, "positive", allow_empty=True)
    neg = _matrix(negative, "negative", allow_empty=True)
    if pos.shape[0] == 0 and neg.shape[0] == 0:
        raise InvalidArgument("a direction needs at least one positive or negative example")
    if pos.shape[0] and neg.shape[0]:
        _same_dim(pos, neg, "positive and negative examples")
    d = pos.shape[1] if pos.shape[0] else neg.shape[1]
    direction = np.zeros(d)
    if pos.shape[0]:
        direction += pos.mean(axis=0)
    if neg.shape[0]:
        direction -= neg.mean(axis=0)
    basis = _orthonormal_basis(orthogonal_to, d)
    for _ in range(2):  # a second pass removes what rounding left behind
        for e in basis:
            direction = direction - (direction @ e) * e
    if float(np.linalg.norm(direction)) < _EPS:
        raise InvalidArgument(
            "the direction is (nearly) zero: the examples do not differ "
            "outside the directions it must stay orthogonal to"
        )
    return direction.astype(np.float32)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of `a` to every row of `b`.

    Args:
        a: (n, d) or (d,) vectors; rows are normalised here.
        b: (m, d) or (d,) vectors.

    Returns:
        (n, m) float32 cosines; a zero row has cosine 0 to everything.

    Raises:
        InvalidArgument: non-finite input.
        DimensionMismatch: `a` and `b` differ in dimension.
    """
    ua = _matrix(a, "a", allow_empty=True)
    ub = _matrix(b, "b", allow_empty=True)
    if ua.shape[0] and ub.shape[0]:
        _same_dim(ua, ub, "cosine_matrix")
    if ua.shape[0] == 0 or ub.shape[0] == 0:
        return np.zeros((ua.shape[0], ub.shape[0]), dtype=np.float32)
    return np.clip(unit_rows(ua, _EPS) @ unit_rows(ub, _EPS).T, -1.0, 1.0).astype(np.float32)


def mmr(query: np.ndarray, candidates: np.ndarray, k: int, diversity: float) -> list[int]:
    """Maximal marginal relevance: pick k candidates that are relevant but not alike.

    Each pick maximises λ·cos(query, c) − (1−λ)·max cos(c, picked), λ = 1 − diversity.
    The first pick is always the most relevant; ties go to the more relevant, then
    to the lower index.

    Args:
        query: (d,) query vector.
        candidates: (n, d) candidate vectors.
        k: How many to pick (at most n are returned), >= 1.
        diversity: 0 = pure relevance order, 1 = only avoid similarity to picks.

    Returns:
        Indices into `candidates`, in pick order.

    Raises:
        InvalidArgument: k < 1, diversity outside [0, 1], or non-finite input.
    """
    if k < 1:
        raise InvalidArgument(f"k must be at least 1, got {k}")
    if not 0.0 <= diversity <= 1.0:
        raise InvalidArgument(f"diversity must be between 0 and 1, got {diversity}")
    cands = _matrix(candidates, "candidates", allow_empty=True)
    if cands.shape[0] == 0:
        return []
    relevance = cosine_matrix(_vector(query, "query"), cands)[0].astype(np.float64)
    pairwise = cosine_matrix(cands, cands).astype(np.float64)
    lam = 1.0 - diversity
    picked: list[int] = []
    closest = np.full(cands.shape[0], -np.inf)
    for _ in range(min(k, cands.shape[0])):
        redundancy = np.where(np.isfinite(closest), closest, 0.0)
        score = lam * relevance - (1.0 - lam) * redundancy
        score[picked] = -np.inf
        picked.append(_best(score, relevance))
        closest = np.maximum(closest, pairwise[picked[-1]])
    return picked


def _best(score: np.ndarray, relevance: np.ndarray) -> int:
    top = np.flatnonzero(score >= score.max() - 1e-12)
    return int(top[np.argmax(relevance[top])])


def collapse_near_duplicates(candidates: np.ndarray, threshold: float) -> list[int]:
    """Drop candidates too similar to a better-ranked one that was kept.

    Args:
        candidates: (n, d) vectors in rank order (best first).
        threshold: Cosine in (0, 1] at or above which a candidate is a duplicate;
            1e-6 of slack lets exact duplicates count at threshold 1.

    Returns:
        Indices of the kept candidates, in rank order.

    Raises:
        InvalidArgument: threshold outside (0, 1] or non-finite input.
    """
    if not 0.0 < threshold <= 1.0:
        raise InvalidArgument(f"dedup threshold must be in (0, 1], got {threshold}")
    units = unit_rows(_matrix(candidates, "candidates", allow_empty=True), _EPS)
    kept: list[int] = []
    for i in range(units.shape[0]):
        if kept and float(np.max(units[kept] @ units[i])) >= threshold - _EPS:
            continue
        kept.append(i)
    return kept


@dataclass(frozen=True)
class DensityReport:
    """How crowded the neighbourhood of a query is, against the collection's norm."""

    knn_similarity: float
    typical_similarity: float
    ratio: float
    is_hole: bool


def density_report(
    query_to_neighbours: np.ndarray,
    typical_similarity: float,
    hole_ratio: float = 0.8,
) -> DensityReport:
    """Compare a query's k-NN similarity with the collection's typical one.

    Args:
        query_to_neighbours: (k,) cosines of the query to its k nearest stored vectors
            (the scores an inner-product search over unit vectors returns).
        typical_similarity: From `typical_knn_similarity`, must be > 0.
        hole_ratio: The query is in a hole when knn / typical falls below this.

    Returns:
        The report.

    Raises:
        InvalidArgument: no neighbours, non-finite input, typical_similarity <= 0
            or hole_ratio <= 0.
    """
    sims = _finite(query_to_neighbours, "query_to_neighbours").ravel()
    if sims.size == 0:
        raise InvalidArgument("a density report needs at least one neighbour")
    if not (np.isfinite(typical_similarity) and typical_similarity > 0):
        raise InvalidArgument(f"typical_similarity must be > 0, got {typical_similarity}")
    if not (np.isfinite(hole_ratio) and hole_ratio > 0):
        raise InvalidArgument(f"hole_ratio must be > 0, got {hole_ratio}")
    knn = float(sims.mean())
    ratio = knn / float(typical_similarity)
    return DensityReport(knn, float(typical_similarity), ratio, ratio < hole_ratio)


def typical_knn_similarity(
    vectors: np.ndarray, k: int = 10, sample: int = 1000, seed: int = 0
) -> float:
    """Mean, over a sample of stored vectors, of their mean cosine to their k nearest others.

    Exact search (faiss.IndexFlatIP on normalised rows). With n <= k every other
    vector is a neighbour (k becomes n − 1).

    Args:
        vectors: (n, d) stored vectors, n >= 2.
        k: Neighbours per sampled vector, >= 1.
        sample: How many vectors to sample (all when n <= sample), >= 1.
        seed: Seed of the sample.

    Returns:
        The typical k-NN cosine.

    Raises:
        InvalidArgument: fewer than two vectors, k or sample < 1, non-finite input.
    """
    if k < 1 or sample < 1:
        raise InvalidArgument(f"k and sample must be at least 1, got k={k}, sample={sample}")
    units = unit_rows(_matrix(vectors, "vectors", dtype=np.float32), _EPS)
    units = np.ascontiguousarray(units, dtype=np.float32)
    n = units.shape[0]
    if n < 2:
        raise InvalidArgument("the typical neighbour similarity needs at least two vectors")
    k = min(k, n - 1)
    rows = np.sort(np.random.default_rng(seed).choice(n, min(sample, n), replace=False))
    index = faiss.IndexFlatIP(units.shape[1])
    index.add(units)
    sims, ids = index.search(units[rows], k + 1)
    keep = ids != rows[:, None]
    keep[keep.all(axis=1), -1] = False  # self hidden among ties: drop the weakest instead
    return float(sims[keep].reshape(len(rows), k).mean())


def snap_to_neighbours(neighbours: np.ndarray) -> np.ndarray:
    """The unit centroid of the (normalised) neighbour vectors.

    Args:
        neighbours: (k, d) vectors, k >= 1.

    Returns:
        (d,) float32 unit vector.

    Raises:
        InvalidArgument: no neighbours, non-finite input, or a zero centroid.
    """
    units = unit_rows(_matrix(neighbours, "neighbours"), _EPS)
    return _unit(units.mean(axis=0), "the neighbours' centroid").astype(np.float32)


DUPLICATE_DISTANCE = 0.02


@dataclass(frozen=True)
class VariationPicks:
    """Which candidates were picked as variations of a seed, and how many were in the band."""

    indices: list[int]
    in_band: int


def check_band(radius: float, min_distance: float, diversity: float) -> None:
    """Validate a variations band and diversity.

    Raises:
        InvalidArgument: radius outside (0, 2], min_distance outside [0, radius) or
            diversity outside [0, 1], each with the value that was given.
    """
    if not (np.isfinite(radius) and 0.0 < radius <= 2.0):
        raise InvalidArgument(
            f"radius is a cosine distance (1 - cosine) in (0, 2], e.g. 0.3; got {radius:g}"
        )
    if not (np.isfinite(min_distance) and 0.0 <= min_distance < radius):
        raise InvalidArgument(
            f"min_distance must be at least 0 and below the radius ({radius:g}), "
            f"got {min_distance:g}: lower min_distance or widen the radius"
        )
    if not 0.0 <= diversity <= 1.0:
        raise InvalidArgument(f"diversity must be between 0 and 1, got {diversity}")


def pick_variations(
    seed: np.ndarray,
    candidates: np.ndarray,
    n: int,
    radius: float,
    min_distance: float = DUPLICATE_DISTANCE,
    diversity: float = 0.5,
) -> VariationPicks:
    """Pick up to n candidates a small, distinct move away from the seed.

    A candidate qualifies when its cosine distance to the seed (1 − cos) lies in
    [min_distance, radius]: closer ones are the seed itself or near-duplicates of
    it. Among those, a greedy MMR pick maximises (1−λ)·closeness − λ·redundancy,
    λ = diversity, where closeness is the position in the band (1 at its inner
    edge, 0 at the radius) and redundancy is the largest cosine between the
    candidate's direction away from the seed and a picked one's, so the picks move
    in different directions (another colour, another size, another backdrop) rather
    than all the same way. A candidate within min_distance of a pick is a
    near-duplicate of it and is skipped.

    Args:
        seed: (d,) seed vector.
        candidates: (m, d) candidate vectors (normalised here).
        n: How many to pick, >= 1.
        radius: Largest cosine distance to the seed, in (0, 2].
        min_distance: Smallest cosine distance to the seed and between picks, in
            [0, radius).
        diversity: 0 picks the nearest; 1 only avoids repeating a direction.

    Returns:
        The picked indices into `candidates`, in pick order, and the band's size.

    Raises:
        InvalidArgument: n < 1, a bad band or diversity, zero or non-finite input.
        DimensionMismatch: seed and candidates differ in dimension.
    """
    if n < 1:
        raise InvalidArgument(f"n must be at least 1, got {n}")
    check_band(radius, min_distance, diversity)
    s = _unit(_vector(seed, "seed"), "seed")
    units = unit_rows(_matrix(candidates, "candidates", allow_empty=True), _EPS)
    if units.shape[0] == 0:
        return VariationPicks([], 0)
    _same_dim(s, units, "variations")
    cos = units @ s
    band = np.flatnonzero((1.0 - cos >= min_distance) & (1.0 - cos <= radius))
    closeness = (cos[band] - (1.0 - radius)) / max(radius - min_distance, _EPS)
    moves = unit_rows(units[band] - cos[band, None] * s, _EPS)
    picked = _greedy_spread(closeness, moves, units[band], n, diversity, 1.0 - min_distance)
    return VariationPicks([int(band[i]) for i in picked], int(band.size))


def _greedy_spread(
    closeness: np.ndarray,
    moves: np.ndarray,
    units: np.ndarray,
    n: int,
    diversity: float,
    duplicate_cos: float,
) -> list[int]:
    """MMR over move directions; skips candidates that duplicate a pick."""
    picked: list[int] = []
    redundancy = np.zeros(len(closeness))  # nothing picked yet: no redundancy
    allowed = np.ones(len(closeness), dtype=bool)
    while len(picked) < n and allowed.any():
        score = np.where(allowed, (1.0 - diversity) * closeness - diversity * redundancy, -np.inf)
        best = _best(score, closeness)
        along = moves @ moves[best]
        redundancy = np.maximum(redundancy, along) if picked else along
        picked.append(best)
        allowed &= units @ units[best] < duplicate_cos
        allowed[best] = False
    return picked
