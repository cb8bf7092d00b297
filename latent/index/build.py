"""Building an index from vectors: train on a sample, add, then tune nprobe / efSearch for recall.

Tuning measures recall@10 of sample queries drawn from the collection itself (moved
off their stored points) against exact search, and keeps the cheapest setting that
reaches the policy's target; SQ8 and PQ codes cap recall, so tuning stops where more
probing no longer helps. The measured recall is recorded in the spec (and so in the
snapshot manifest).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import faiss
import numpy as np

from latent.index.base import VectorIndex, as_matrix
from latent.index.flat import FlatIndex
from latent.index.hnsw import HNSWIndex
from latent.index.ivf import IVFIndex
from latent.index.policy import IndexSpec
from latent.linalg import unit_rows

log = logging.getLogger(__name__)

TUNE_QUERIES = 200
TUNE_K = 10
TRAIN_POINTS_PER_LIST = 50  # above FAISS' minimum of 39, far below its default cap of 256
MIN_TRAIN_POINTS = 16_384  # SQ8 ranges and PQ codebooks want a few thousand points too
PLATEAU = 0.005  # recall gains below this are noise: stop widening the search
EF_LADDER = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)


def new_index(spec: IndexSpec, dim: int) -> FlatIndex | HNSWIndex | IVFIndex:
    """An empty index of a spec (IVF ones still need ``train``)."""
    if spec.kind == "flat":
        return FlatIndex(dim)
    if spec.kind == "hnsw":
        return HNSWIndex(dim, spec)
    return IVFIndex(dim, spec)


def build_index(
    spec: IndexSpec,
    ids: np.ndarray,
    vectors: np.ndarray,
    target_recall: float = 0.97,
    seed: int = 0,
) -> VectorIndex:
    """An index of ``spec`` holding ``vectors`` under ``ids``, trained and tuned.

    Args:
        spec: What to build (``index_policy.complete`` output); nprobe / ef_search at 0
            are tuned here.
        ids: int64 ids, one per row.
        vectors: (n, dim) unit vectors.
        target_recall: Recall@10 against exact search that tuning aims at.
        seed: Seed of the training and tuning samples.

    Returns:
        The index, its ``spec`` carrying the tuned parameters and measured recall.
    """
    started = time.monotonic()
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    matrix = as_matrix(vectors, vectors.shape[-1])
    index = new_index(spec, matrix.shape[1])
    if isinstance(index, IVFIndex):
        wanted = max(spec.nlist * TRAIN_POINTS_PER_LIST, MIN_TRAIN_POINTS)
        index.train(_sample(matrix, wanted, seed))
    index.add(ids, matrix)
    if isinstance(index, IVFIndex | HNSWIndex) and len(ids) > TUNE_K + 1:
        if not (spec.nprobe if spec.is_ivf else spec.ef_search):
            index.spec = tune(index, ids, matrix, target_recall, seed)
    log.info(
        "built %s over %d vectors in %.1f s",
        index.spec.describe(),
        len(ids),
        time.monotonic() - started,
    )
    return index


def _sample(matrix: np.ndarray, size: int, seed: int) -> np.ndarray:
    if len(matrix) <= size:
        return matrix
    rows = np.sort(np.random.default_rng(seed).choice(len(matrix), size, replace=False))
    return matrix[rows]


def tune(
    index: IVFIndex | HNSWIndex,
    ids: np.ndarray,
    matrix: np.ndarray,
    target_recall: float,
    seed: int = 0,
) -> IndexSpec:
    """The cheapest nprobe (IVF) or efSearch (HNSW) reaching ``target_recall``.

    Returns:
        The index's spec with the parameter set and ``recall`` the measured recall@10.
    """
    queries = _queries(matrix, seed)
    _, exact = faiss.knn(queries, matrix, TUNE_K, metric=faiss.METRIC_INNER_PRODUCT)
    truth = ids[exact]
    ivf = isinstance(index, IVFIndex)
    best: tuple[float, IndexSpec] | None = None
    flat_steps = 0
    for value in _ladder(index):
        index.spec = (
            replace(index.spec, nprobe=value) if ivf else replace(index.spec, ef_search=value)
        )
        _, found = index.search(queries, TUNE_K)
        recall = _recall(found, truth)
        candidate = replace(index.spec, recall=round(recall, 4))
        if recall >= target_recall:
            if ivf and value > index.spec.nlist // 4:
                # Probing a quarter of the lists is close to a full scan: the vectors have
                # little cluster structure, and exact search would serve as fast.
                log.warning("%s needs nprobe=%d for recall", candidate.describe(), value)
            return candidate
        improved = best is None or recall > best[0] + PLATEAU
        if improved:
            best, flat_steps = (recall, candidate), 0
        else:
            flat_steps += 1
            if flat_steps >= 2:  # SQ8 / PQ codes cap recall: probing more only costs time
                break
    assert best is not None
    log.warning(
        "%s reaches recall@10 %.3f at best, below the target %.2f",
        best[1].describe(),
        best[0],
        target_recall,
    )
    return best[1]


def _ladder(index: IVFIndex | HNSWIndex) -> list[int]:
    if isinstance(index, HNSWIndex):
        return list(EF_LADDER)
    nlist = index.spec.nlist
    steps = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
    return [s for s in steps if s < nlist] + [nlist]


def _queries(matrix: np.ndarray, seed: int) -> np.ndarray:
    """Sample vectors moved about as far as their nearest neighbour, then re-normalised.

    A stored vector itself is a poor query: an HNSW graph links it to its neighbours
    directly, which flatters recall. A nearby point that is not stored is like a real
    query landing among the collection's assets.
    """
    rng = np.random.default_rng(seed + 1)
    rows = rng.choice(len(matrix), min(TUNE_QUERIES, len(matrix)), replace=False)
    points = matrix[rows]
    scores, _ = faiss.knn(points, matrix, 2, metric=faiss.METRIC_INNER_PRODUCT)
    gap = np.sqrt(np.clip(2 - 2 * scores[:, 1:2], 0, 4))  # distance to the nearest other
    noise = rng.standard_normal(points.shape).astype(np.float32) / np.sqrt(matrix.shape[1])
    moved = points + gap * noise
    return np.ascontiguousarray(unit_rows(moved), np.float32)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(
        len(set(f[f >= 0].tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True)
    )
    return hits / truth.size
