"""Fitting a 2-D map of a collection: a PCA (or UMAP) projection of its vectors."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from latent.errors import FailedPrecondition, InvalidArgument
from latent.query.navigation import principal_components


class Projection:
    """A fitted map from latent vectors to 2-D points."""

    def __init__(
        self,
        method: Literal["pca", "umap"],
        mean: np.ndarray | None = None,
        axes: np.ndarray | None = None,
        reducer: Any = None,
    ) -> None:
        """Hold a fitted projection; use `Projection.fit` rather than this."""
        self.method = method
        self._mean = mean
        self._axes = axes
        self._reducer = reducer

    @classmethod
    def fit(
        cls,
        vectors: np.ndarray,
        method: Literal["pca", "umap"] = "pca",
        seed: int = 0,
    ) -> Projection:
        """Fit a projection to a collection's vectors.

        Args:
            vectors: (n, d) vectors, n >= 1 (UMAP needs n >= 3).
            method: "pca" (numpy, deterministic) or "umap" (needs umap-learn).
            seed: Random state for UMAP; PCA has none.

        Returns:
            The fitted projection.

        Raises:
            InvalidArgument: bad vectors or method.
            FailedPrecondition: UMAP asked for but not installed.
        """
        x = _rows(vectors)
        if method == "pca":
            if x.shape[1] < 2:
                raise InvalidArgument("a 2-D map needs vectors of dimension 2 or more")
            return cls("pca", mean=x.mean(axis=0), axes=principal_components(x, 2))
        if method == "umap":
            return cls("umap", reducer=_fit_umap(x, seed))
        raise InvalidArgument(f"projection method must be 'pca' or 'umap', got {method!r}")

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Project vectors (fitted or new) onto the map.

        Args:
            vectors: (n, d) vectors of the fitted dimension.

        Returns:
            (n, 2) float32 map coordinates.

        Raises:
            InvalidArgument: bad vectors or a dimension other than the fitted one.
        """
        x = _rows(vectors)
        if self._reducer is not None:
            return np.asarray(self._reducer.transform(x), dtype=np.float32)
        assert self._mean is not None and self._axes is not None
        if x.shape[1] != self._mean.shape[0]:
            raise InvalidArgument(f"expected dimension {self._mean.shape[0]}, got {x.shape[1]}")
        return ((x - self._mean) @ self._axes.T).astype(np.float32)


def _rows(vectors: np.ndarray) -> np.ndarray:
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise InvalidArgument(f"expected a non-empty (n, d) array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InvalidArgument("vectors contain NaN or infinite values")
    return x


def _fit_umap(x: np.ndarray, seed: int) -> Any:
    try:
        import umap  # optional: heavy, not a dependency
    except ImportError as exc:
        raise FailedPrecondition("UMAP is not installed: pip install umap-learn") from exc
    if x.shape[0] < 3:
        raise InvalidArgument("UMAP needs at least 3 vectors")
    reducer = umap.UMAP(n_components=2, n_neighbors=min(15, x.shape[0] - 1), random_state=seed)
    return reducer.fit(x)
