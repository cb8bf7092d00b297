"""Plain results of the query engine: resolved queries, found assets, pages of a ranking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from latent.catalog import AssetRecord
    from latent.query.terms import Term


@dataclass(frozen=True)
class Composed:
    """A resolved query: its terms, each term's unit vector and the composed unit vector."""

    terms: list[Term]
    term_vectors: list[np.ndarray]
    vector: np.ndarray


@dataclass(frozen=True)
class Found:
    """One hit before it becomes a message."""

    asset: AssetRecord
    score: float
    embedding_id: int
    segment: tuple[float | None, float | None]


@dataclass(frozen=True)
class Page:
    """One page of a ranking: its hits, whether more follow, the shaped pool size."""

    found: list[Found]
    more: bool
    pool: int = 0


@dataclass(frozen=True)
class Step:
    """One step of a walk (interpolation or traversal): where it is and what it shows."""

    step: int
    t: float
    found: list[Found]


@dataclass(frozen=True)
class Variations:
    """Variations of a seed, nearest first, with the band they were picked from."""

    found: list[Found]
    radius: float
    min_distance: float
    in_band: int
    seq: int
    size: int
