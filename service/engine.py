"""The query engine: domain terms and filters in, vectors and shaped hits out (no protobuf)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from latent.catalog.external import is_external_model
from latent.errors import FailedPrecondition, InvalidArgument, ModelUnavailable
from latent.query import navigation
from latent.query.algebra import compose, embed_term, needs_encoder
from latent.query.expressions import terms_from_expression
from service.deadlines import Check, no_check
from service.limits import check_at_most, check_range
from service.query_cache import QueryCache, term_key
from service.results import Composed, Found, Page

if TYPE_CHECKING:
    from latent.catalog import Catalog, CollectionInfo
    from latent.index.live import Generation, LiveIndex
    from latent.models.encoders import Encoder, EncoderCache
    from latent.query.filters import Filter
    from latent.query.terms import Term
    from latent.settings import Settings
    from service.hits import Joined
    from service.indexes import IndexRegistry

DENSITY_K = 10
MAX_CANDIDATES = 2000
# A filter is applied before FAISS (an id selector over the matching ids) when it matches
# at most PREFILTER_MIN vectors, or when fetching its ids costs less than over-fetching:
# matches**2 <= PREFILTER_BALANCE * top_k * index size (over-fetch grows as size/matches).
PREFILTER_MIN = 1000
PREFILTER_BALANCE = 4.0
MAX_GROWTH = 64  # an over-fetch grows by at most this factor per round


@dataclass(frozen=True)
class Scope:
    """What a search may return: every searchable vector, or those matching ``where``.

    With a filter, ``allowed`` holds the matching ids for a pre-filter (a FAISS id
    selector) and ``matches`` their count; ``allowed`` None means more match than a
    pre-filter takes: over-fetch and post-filter in SQL.
    """

    where: Filter | None = None
    allowed: np.ndarray | None = None
    matches: int | None = None


class QueryEngine:
    """Turns domain queries into vectors and vectors into shaped hits."""

    def __init__(
        self, settings: Settings, catalog: Catalog, indexes: IndexRegistry, encoders: EncoderCache
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.indexes = indexes
        self.encoders = encoders
        # collection -> (index size when measured, typical k-NN similarity)
        self._typical: dict[str, tuple[int, float]] = {}
        self.query_cache = QueryCache(settings.query_cache_size)

    def live(self, collection: str) -> LiveIndex:
        """The live index of a collection (the default one when empty)."""
        return self.indexes.get(collection or self.settings.collection)

    def top_k(self, requested: int, default: int = 10) -> int:
        """Validate a requested hit count (0 means the default).

        Raises:
            InvalidArgument: negative or above ``max_top_k`` (the message names the setting).
        """
        if requested == 0:
            return min(default, self.settings.max_top_k)
        check_range("top_k", requested, 1, "max_top_k", self.settings)
        return requested

    def steps(self, requested: int, low: int, default: int) -> int:
        """Validate the step count of a walk (0 means the default).

        Raises:
            InvalidArgument: below ``low`` or above ``max_steps`` (the message names the setting).
        """
        if requested == 0:
            return min(default, self.settings.max_steps)
        check_range("steps", requested, low, "max_steps", self.settings)
        return requested

    def terms(self, terms: Sequence[Term], expression: str, what: str = "query") -> list[Term]:
        """A query's terms, given as terms or as an expression (exactly one must be set).

        Args:
            terms: The query's terms; empty when it is an expression.
            expression: The query as an expression; empty when it is terms.
            what: The query's name in error messages ("source", "seed"...).

        Returns:
            The terms, in order.

        Raises:
            InvalidArgument: both or neither are set, too many terms (``max_terms``), an
                expression too long (``max_expression_chars``), or a bad expression.
        """
        if bool(terms) == bool(expression):
            raise InvalidArgument(f"{what}: set exactly one of terms or expression")
        limits = self.settings
        if expression:
            chars = len(expression)
            check_at_most(
                f"characters in {what}'s expression", chars, "max_expression_chars", limits
            )
            terms = terms_from_expression(expression, max_chars=None, max_terms=None)
        check_at_most(f"terms in {what}", len(terms), "max_terms", limits)
        return list(terms)

    def compose(self, live: LiveIndex, terms: list[Term], check: Check = no_check) -> Composed:
        """Embed each term in the collection's space and compose them.

        ``check`` runs before each term is embedded, so a call whose deadline passed or
        whose client cancelled stops between terms (it raises to stop).
        """
        collection = live.collection
        encoder = self._encoder(collection) if any(map(needs_encoder, terms)) else None
        vectors = []
        for term in terms:
            check()
            vectors.append(self._embed(term, collection, encoder))
        return Composed(terms, vectors, compose(vectors, [t.weight for t in terms]))

    def _embed(self, term: Term, collection: CollectionInfo, encoder: Encoder | None) -> np.ndarray:
        """One term's vector; text and image terms through the query cache (by model spec)."""
        key = term_key(collection.model_spec, term) if encoder is not None else None
        return self.query_cache.get_or_embed(
            key,
            lambda: embed_term(
                term, self.catalog, collection, encoder, self.settings.max_image_pixels
            ),
        )

    def _encoder(self, collection: CollectionInfo) -> Encoder:
        """The collection's encoder, for text and image terms.

        Raises:
            ModelUnavailable: the collection's model cannot be loaded here (vectors imported
                from elsewhere, a bad spec or missing weights).
            FailedPrecondition: the model's dimension is not the collection's.
        """
        spec = collection.model_spec
        hint = "query it by vector, asset id or direction instead"
        if is_external_model(spec):
            raise ModelUnavailable(
                f"collection {collection.name!r} holds imported vectors of model {spec!r}, "
                f"which has no text or image encoder here; {hint}"
            )
        try:
            encoder = self.encoders.get(spec)
        except InvalidArgument as exc:  # a stored spec that does not parse is not the caller's
            raise ModelUnavailable(
                f"the model {spec!r} of collection {collection.name!r} cannot be loaded ({exc}); "
                f"{hint}"
            ) from exc
        if encoder.dim != collection.dim:
            raise FailedPrecondition(
                f"model {spec!r} makes {encoder.dim}-d vectors but collection "
                f"{collection.name!r} holds {collection.dim}-d ones; {hint}"
            )
        return encoder

    def scope(
        self, live: LiveIndex, generation: Generation, where: Filter | None, top_k: int
    ) -> Scope:
        """Plan a filtered search: a pre-filter when the filter is selective, else post-filter.

        The matching ids are counted and fetched in one query that stops one past the
        pre-filter threshold, so a broad filter costs no full scan.
        """
        if where is None:
            return Scope()
        size = max(len(generation.index), 1)
        threshold = int(max(PREFILTER_MIN, math.sqrt(PREFILTER_BALANCE * top_k * size)))
        ids = self.catalog.matching_ids(live.collection, where, limit=threshold + 1)
        if len(ids) <= threshold:
            return Scope(where, ids, len(ids))
        return Scope(where)

    def nearest(
        self,
        generation: Generation,
        vector: np.ndarray,
        top_k: int,
        *,
        exclude: frozenset[int] = frozenset(),
        diversity: float = 0.0,
        dedup_threshold: float = 0.0,
        scope: Scope | None = None,
    ) -> list[Found]:
        """Top-k indexed assets in scope, skipping ``exclude`` (asset ids), shaped by MMR/dedup."""
        return self.page(
            generation,
            vector,
            top_k,
            exclude=exclude,
            diversity=diversity,
            dedup_threshold=dedup_threshold,
            scope=scope,
        ).found

    def page(
        self,
        generation: Generation,
        vector: np.ndarray,
        top_k: int,
        *,
        offset: int = 0,
        pool: int = 0,
        exclude: frozenset[int] = frozenset(),
        diversity: float = 0.0,
        dedup_threshold: float = 0.0,
        scope: Scope | None = None,
    ) -> Page:
        """Hits ``offset`` to ``offset + top_k`` of one deterministic ranking.

        Unshaped, the ranking is every searchable vector in scope by score, ties by id.
        Shaped (diversity or dedup), it is the MMR / dedup order of a pool of the best
        ``pool`` candidates (default ``min(2000, 4 * top_k)``); later pages pass the
        same pool so that pages continue one sequence.
        """
        scope = scope or Scope()
        end = offset + top_k
        joined: Joined = {}
        if diversity <= 0 and dedup_threshold <= 0:
            ranked = self._ranked(generation, vector, end + 1, scope, exclude, joined)
            return Page(self._found(ranked[offset:end], joined), len(ranked) > end)
        pool = pool or min(MAX_CANDIDATES, top_k * 4)
        ranked = self._ranked(generation, vector, pool, scope, exclude, joined)
        order = self._shape(generation, vector, ranked, end + 1, diversity, dedup_threshold)
        chosen = [ranked[i] for i in order[offset:end]]
        return Page(self._found(chosen, joined), len(order) > end, pool)

    def _ranked(
        self,
        generation: Generation,
        vector: np.ndarray,
        count: int,
        scope: Scope,
        exclude: frozenset[int],
        joined: Joined,
    ) -> list[tuple[int, float]]:
        """The first ``count`` (embedding id, score) in scope, by score then id.

        Fetches from FAISS, growing by the pass rate seen so far, until enough pass the
        post-filter and no tie at the cut can hide beyond what was fetched, or the index
        is exhausted: so exactly ``count`` come back whenever that many match. Without a
        filter the hits' own catalog join is the post-filter, kept in ``joined``, so an
        unfiltered search costs one SQL query.
        """
        if scope.matches == 0:
            return []
        universe = len(generation.index) if scope.allowed is None else len(scope.allowed)
        fetch = min(universe, count + 1 + len(exclude))
        owners: dict[int, int] = {}
        while True:
            scores, ids = generation.index.search(vector, fetch, allowed=scope.allowed)
            pairs = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
            if scope.where is None:
                fresh = [i for i, _ in pairs if i not in joined]
                joined.update(self.indexes.hits.get(fresh))
                owners = {i: hit[0].id for i, hit in joined.items()}
            else:
                owners = self.catalog.searchable([i for i, _ in pairs], scope.where)
            kept = sorted(
                ((i, s) for i, s in pairs if i in owners and owners[i] not in exclude),
                key=lambda p: (-p[1], p[0]),
            )
            exhausted = fetch >= universe or len(pairs) < fetch
            if exhausted or (len(kept) >= count and pairs[-1][1] < kept[count - 1][1]):
                return kept[:count]
            fetch = min(universe, _next_fetch(fetch, len(kept) / len(pairs), count))

    def _found(self, ranked: list[tuple[int, float]], joined: Joined) -> list[Found]:
        """The ranked ids joined to their assets (those not in ``joined`` yet), as hits."""
        missing = [i for i, _ in ranked if i not in joined]
        if missing:
            joined.update(self.indexes.hits.get(missing))
        return [
            Found(joined[i][0], score, i, (joined[i][1], joined[i][2]))
            for i, score in ranked
            if i in joined  # an asset deleted since it was ranked drops out
        ]

    def _shape(
        self,
        generation: Generation,
        vector: np.ndarray,
        ranked: list[tuple[int, float]],
        count: int,
        diversity: float,
        dedup_threshold: float,
    ) -> list[int]:
        """Indices into ``ranked`` in shaped order: dedup, then MMR (greedy, so prefix-stable)."""
        candidates = generation.index.vectors(np.array([i for i, _ in ranked], np.int64))
        order = list(range(len(ranked)))
        if dedup_threshold > 0:
            order = navigation.collapse_near_duplicates(candidates, dedup_threshold)
        if diversity > 0 and order:
            picked = navigation.mmr(vector, candidates[order], min(count, len(order)), diversity)
            order = [order[i] for i in picked]
        return order[:count]

    def density(self, live: LiveIndex, vector: np.ndarray) -> navigation.DensityReport | None:
        """How the query's neighbourhood compares with the collection's typical one."""
        generation = live.generation
        if len(generation.index) <= DENSITY_K:
            return None
        _, ids = generation.index.search(vector, DENSITY_K)
        neighbours = generation.index.vectors(ids[0][ids[0] >= 0])
        return navigation.density_report(
            neighbours @ vector, self._typical_similarity(live, generation)
        )

    def typical_similarity(self, live: LiveIndex) -> float | None:
        """Typical cosine of an asset to its nearest others; None below two assets."""
        generation = live.generation
        if len(generation.index) < 2:
            return None
        return self._typical_similarity(live, generation)

    def _typical_similarity(self, live: LiveIndex, generation: Generation) -> float:
        """Measured once and again only when the collection grew or shrank by 10%."""
        size = len(generation.index)
        cached = self._typical.get(live.collection.name)
        if cached is None or abs(size - cached[0]) > 0.1 * cached[0]:
            value = navigation.typical_knn_similarity(generation.index.matrix(), DENSITY_K)
            cached = self._typical[live.collection.name] = (size, value)
        return cached[1]

    def snap(self, live: LiveIndex, vector: np.ndarray) -> np.ndarray:
        """The unit centroid of the query's nearest assets."""
        generation = live.generation
        _, ids = generation.index.search(vector, DENSITY_K)
        return navigation.snap_to_neighbours(generation.index.vectors(ids[0][ids[0] >= 0]))


def _next_fetch(fetch: int, pass_rate: float, count: int) -> int:
    """The next over-fetch: enough for ``count`` + 1 at the pass rate seen, 2x to 64x more."""
    if pass_rate <= 0:
        return fetch * 8
    wanted = math.ceil((count + 1) * 1.25 / pass_rate)
    return min(fetch * MAX_GROWTH, max(fetch * 2, wanted))
