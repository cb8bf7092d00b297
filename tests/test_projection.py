"""Tests of the 2-D map's fitting: PCA (and UMAP) projection of a collection's vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cli.mapview import render_html
from latent.errors import FailedPrecondition, InvalidArgument
from latent.query.navigation import interpolate
from latent.query.projection import Projection

DIM = 32


def clustered(n_clusters: int = 5, per: int = 40) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(n_clusters, DIM))
    vectors = np.repeat(centres, per, axis=0) + 0.15 * rng.normal(size=(n_clusters * per, DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    names = ["circle", "square", "triangle", "star", "ring", "cross", "wave", "dot"]
    return vectors.astype(np.float32), [
        names[i % len(names)] for i in np.repeat(range(n_clusters), per)
    ]


def test_pca_projection_shape_determinism_and_separation():
    vectors, categories = clustered()
    first = Projection.fit(vectors)
    points = first.transform(vectors)
    assert first.method == "pca"
    assert points.shape == (len(vectors), 2) and points.dtype == np.float32
    assert np.array_equal(points, Projection.fit(vectors).transform(vectors))
    # clusters stay apart on the map: each point is nearer its own cluster's centre
    labels = np.array(categories)
    centres = {c: points[labels == c].mean(axis=0) for c in set(categories)}
    spread = np.mean(
        [np.linalg.norm(points[labels == c] - m, axis=1).mean() for c, m in centres.items()]
    )
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a in centres for b in centres if a < b]
    assert min(gaps) > spread


def test_projection_transforms_new_points_and_checks_dimension():
    vectors, _ = clustered()
    projection = Projection.fit(vectors)
    assert projection.transform(vectors[:3] * 1.0).shape == (3, 2)
    with pytest.raises(InvalidArgument, match="dimension"):
        projection.transform(vectors[:, :-1])
    with pytest.raises(InvalidArgument):
        Projection.fit(np.zeros((0, DIM)))
    with pytest.raises(InvalidArgument, match="method"):
        Projection.fit(vectors, method="tsne")  # type: ignore[arg-type]


def test_umap_without_the_package_is_a_failed_precondition():
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(FailedPrecondition, match="pip install umap-learn"):
            Projection.fit(clustered()[0], method="umap")
    else:
        projection = Projection.fit(clustered()[0], method="umap", seed=0)
        assert projection.transform(clustered()[0][:4]).shape == (4, 2)


def test_a_path_projects_onto_the_map(tmp_path: Path):
    vectors, categories = clustered()
    projection = Projection.fit(vectors)
    steps = interpolate(vectors[0], vectors[-1], 8)
    path = projection.transform(np.stack([p for _, p in steps]))
    points = projection.transform(vectors)
    assert np.allclose(path[0], points[0], atol=1e-4) and np.allclose(
        path[-1], points[-1], atol=1e-4
    )
    render_html(points, categories, categories, tmp_path / "m.html", path=path)
    assert (tmp_path / "m.html").read_text(encoding="utf-8").count('class="step"') == 8
