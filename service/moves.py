"""Moves through the latent space over the engine: walks, variations, named directions."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from latent.catalog import DirectionRecord
from latent.errors import InvalidArgument
from latent.hashing import bytes_sha256
from latent.names import check_direction_name
from latent.query import navigation
from latent.query.terms import Asset, Example, Image, Term, Text
from service.deadlines import Check, no_check
from service.limits import check_range
from service.results import Composed, Found, Step, Variations

if TYPE_CHECKING:
    from latent.index.live import LiveIndex
    from latent.query.filters import Filter
    from latent.settings import Settings
    from service.engine import QueryEngine

MAX_EXAMPLES = 256
DEFAULT_VARIATIONS = 8
VARIATION_POOL = 1000
VARIATION_DIVERSITY = 0.3
DEFAULT_RADIUS = 0.5
MAX_COMPONENT = 64


def walk(
    engine: QueryEngine,
    live: LiveIndex,
    path: navigation.Points,
    top_k: int,
    dedupe: bool,
    where: Filter | None,
    check: Check = no_check,
) -> Iterator[Step]:
    """The hits of each point of a path, optionally leaving out those shown before.

    Args:
        engine: The query engine.
        live: The collection's live index.
        path: (t, unit vector) points, in walk order.
        top_k: Hits per step.
        dedupe: Leave out assets shown at an earlier step.
        where: Only assets matching it are shown; None shows any.
        check: Runs before each step; raises to stop the walk (deadline, cancellation).

    Yields:
        One step per point of the path.
    """
    generation = live.generation  # one generation for the whole walk: consistent steps
    scope = engine.scope(live, generation, where, top_k)
    shown: set[int] = set()
    for step, (t, vector) in enumerate(path):
        check()
        found = engine.nearest(
            generation,
            vector,
            top_k,
            exclude=frozenset(shown) if dedupe else frozenset(),
            scope=scope,
        )
        shown.update(f.asset.id for f in found)
        yield Step(step, t, found)


def text_direction(engine: QueryEngine, live: LiveIndex, source: str, target: str) -> np.ndarray:
    """embed(target) - embed(source): the direction from one text to another."""
    pair: list[Term] = [Text(source), Text(target)]
    composed = engine.compose(live, pair)
    return composed.term_vectors[1] - composed.term_vectors[0]


def principal_direction(live: LiveIndex, k: int) -> np.ndarray:
    """The k-th principal axis of the collection's vectors (0 is the first).

    Raises:
        InvalidArgument: k is out of range, or the collection has too few assets for it.
    """
    if not 0 <= k < min(MAX_COMPONENT, live.collection.dim):
        raise InvalidArgument(f"principal_component must be between 0 and 63, got {k}")
    matrix = live.generation.index.matrix()
    if len(matrix) < k + 2:
        raise InvalidArgument(f"collection has too few assets for principal component {k}")
    return navigation.principal_components(matrix, k + 1)[k]


def variation_count(n: int, settings: Settings) -> int:
    """The number of variations asked for (0 means the default).

    Raises:
        InvalidArgument: n is negative or above ``settings.max_top_k`` (named in the message).
    """
    if n == 0:
        return min(DEFAULT_VARIATIONS, settings.max_top_k)
    check_range("n", n, 1, "max_top_k", settings)
    return n


def variations(
    engine: QueryEngine,
    live: LiveIndex,
    seed: Composed,
    n: int,
    radius: float | None = None,
    min_distance: float | None = None,
    diversity: float | None = None,
) -> Variations:
    """Assets a small, distinct move away from a seed, nearest first.

    Args:
        engine: The query engine.
        live: The collection's live index.
        seed: The resolved seed; assets named by its asset terms are never returned.
        n: How many variations.
        radius: Largest cosine distance from the seed; None: from the typical distance.
        min_distance: Smallest cosine distance; None: 0.02, or half the radius if less.
        diversity: Spread in [0, 1]; None: 0.3.

    Returns:
        The variations and the band that was used.

    Raises:
        InvalidArgument: a bad band or diversity.
    """
    radius = default_radius(engine, live) if radius is None else radius
    if min_distance is None:
        min_distance = min(navigation.DUPLICATE_DISTANCE, radius / 2)
    diversity = VARIATION_DIVERSITY if diversity is None else diversity
    navigation.check_band(radius, min_distance, diversity)
    generation = live.generation
    own = frozenset(t.asset_id for t in seed.terms if isinstance(t, Asset))
    found = _one_per_asset(engine.nearest(generation, seed.vector, VARIATION_POOL, exclude=own))
    vectors = generation.index.vectors(np.array([f.embedding_id for f in found], np.int64))
    picks = navigation.pick_variations(seed.vector, vectors, n, radius, min_distance, diversity)
    chosen = sorted((found[i] for i in picks.indices), key=lambda f: -f.score)
    return Variations(
        chosen, radius, min_distance, picks.in_band, generation.seq, len(generation.index)
    )


def default_radius(engine: QueryEngine, live: LiveIndex) -> float:
    """1.5 x the typical distance of an asset to its nearest others, within [0.05, 1]."""
    typical = engine.typical_similarity(live)
    if typical is None:
        return DEFAULT_RADIUS
    return float(np.clip(1.5 * (1.0 - typical), 0.05, 1.0))


def _one_per_asset(found: list[Found]) -> list[Found]:
    """The best-ranked embedding of each asset (a video has one per segment)."""
    seen: set[int] = set()
    out = []
    for f in found:
        if f.asset.id not in seen:
            seen.add(f.asset.id)
            out.append(f)
    return out


def create_direction(
    engine: QueryEngine,
    collection: str,
    name: str,
    positive: Sequence[Example],
    negative: Sequence[Example],
    orthogonal_to: Sequence[str] = (),
) -> DirectionRecord:
    """Store mean(positive) - mean(negative), optionally orthogonal to other directions.

    Args:
        engine: The query engine.
        collection: The collection's name (empty: the default collection).
        name: The direction's name.
        positive: Examples of the concept.
        negative: Examples of its absence.
        orthogonal_to: Names of directions the new one must not move along.

    Returns:
        The stored direction.

    Raises:
        InvalidArgument: a bad name, no examples or too many, or examples that do not differ.
        NotFound: the collection, an example asset or an orthogonal_to direction is unknown.
    """
    check_direction_name(name)
    if not positive and not negative:
        raise InvalidArgument("give at least one positive or negative example")
    if len(positive) + len(negative) > MAX_EXAMPLES:
        raise InvalidArgument(f"at most {MAX_EXAMPLES} examples per direction")
    live = engine.live(collection)
    catalog, dim = engine.catalog, live.collection.dim
    pos, neg = _embedded(engine, live, positive, dim), _embedded(engine, live, negative, dim)
    others = [catalog.direction(live.collection, n).vector for n in orthogonal_to]
    vector = navigation.direction_from_examples(pos, neg, others)
    record = DirectionRecord(
        name=name,
        vector=vector.astype(np.float32),
        norm=float(np.linalg.norm(vector)),
        examples={
            "positive": [describe_example(e) for e in positive],
            "negative": [describe_example(e) for e in negative],
        },
        orthogonal_to=tuple(orthogonal_to),
    )
    return catalog.save_direction(live.collection, record)


def _embedded(
    engine: QueryEngine, live: LiveIndex, examples: Sequence[Example], dim: int
) -> np.ndarray:
    """The examples' unit vectors as rows; (0, dim) when there are none."""
    if not examples:
        return np.zeros((0, dim), np.float32)
    return np.stack(engine.compose(live, list(examples)).term_vectors)


def describe_example(example: Example) -> str:
    """How a direction records an example: a text verbatim, asset:ID, an image's SHA-256."""
    match example:
        case Text(text=text):
            return f'"{text}"'
        case Asset(asset_id=asset_id):
            return f"asset:{asset_id}"
        case Image(data=data):
            return f"image:sha256:{bytes_sha256(data)}"
