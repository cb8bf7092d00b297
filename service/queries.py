"""Query resolution and result shaping shared by the Search and navigation RPCs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from latent import navigation
from latent.algebra import Term, compose, embed_term, needs_encoder, terms_from_expression
from latent.catalog import AssetRecord, Catalog
from latent.encoders import EncoderCache
from latent.errors import InvalidArgument
from latent.expressions import MAX_TERMS
from latent.live import Generation, LiveIndex
from latent.settings import Settings
from service._pb.assetsearch.v1 import search_pb2 as pb
from service.convert import term_from_message
from service.indexes import IndexRegistry

DENSITY_K = 10
MAX_CANDIDATES = 2000


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


class QueryEngine:
    """Turns request queries into vectors and vectors into shaped hits."""

    def __init__(
        self, settings: Settings, catalog: Catalog, indexes: IndexRegistry, encoders: EncoderCache
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.indexes = indexes
        self.encoders = encoders
        # collection -> (index size when measured, typical k-NN similarity)
        self._typical: dict[str, tuple[int, float]] = {}

    def live(self, collection: str) -> LiveIndex:
        """The live index of a collection (the default one when empty)."""
        return self.indexes.get(collection or self.settings.collection)

    def top_k(self, requested: int, default: int = 10) -> int:
        """Validate a requested hit count (0 means the default)."""
        if requested < 0 or requested > self.settings.max_top_k:
            raise InvalidArgument(
                f"top_k must be between 1 and {self.settings.max_top_k}, got {requested}"
            )
        return requested or default

    def terms(
        self, terms: Sequence[pb.QueryTerm], expression: str, what: str = "query"
    ) -> list[Term]:
        """Terms from a repeated field or an expression (exactly one must be set)."""
        if bool(terms) == bool(expression):
            raise InvalidArgument(f"{what}: set exactly one of terms or expression")
        if terms:
            if len(terms) > MAX_TERMS:
                raise InvalidArgument(f"{what}: at most {MAX_TERMS} terms, got {len(terms)}")
            return [term_from_message(t) for t in terms]
        return terms_from_expression(expression)

    def search_terms(self, request: pb.SearchRequest) -> list[Term]:
        """The terms of a SearchRequest: its single query, its terms or its expression."""
        given = [request.HasField("query"), len(request.terms) > 0, bool(request.expression)]
        if sum(given) != 1:
            raise InvalidArgument(
                "set exactly one of query, terms or expression (a query term is text, image, "
                "asset_id, vector or direction)"
            )
        if request.HasField("query"):
            return [replace(term_from_message(request.query), weight=1.0)]
        return self.terms(request.terms, request.expression)

    def compose(self, live: LiveIndex, terms: list[Term]) -> Composed:
        """Embed each term in the collection's space and compose them."""
        collection = live.collection
        encoder = (
            self.encoders.get(collection.model_spec) if any(map(needs_encoder, terms)) else None
        )
        vectors = [
            embed_term(t, self.catalog, collection, encoder, self.settings.max_image_pixels)
            for t in terms
        ]
        return Composed(terms, vectors, compose(vectors, [t.weight for t in terms]))

    def nearest(
        self,
        generation: Generation,
        vector: np.ndarray,
        top_k: int,
        *,
        exclude: frozenset[int] = frozenset(),
        diversity: float = 0.0,
        dedup_threshold: float = 0.0,
    ) -> list[Found]:
        """Top-k indexed assets, skipping ``exclude`` (asset ids), shaped by MMR and dedup."""
        shaping = diversity > 0 or dedup_threshold > 0
        wanted = min(MAX_CANDIDATES, top_k * 4) if shaping else top_k
        fetch = wanted + len(exclude)
        while True:
            scores, ids = generation.index.search(vector, fetch)
            pairs = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
            joined = self.catalog.hits_for_embeddings([i for i, _ in pairs])
            found = [
                Found(joined[i][0], score, i, (joined[i][1], joined[i][2]))
                for i, score in pairs
                if i in joined and joined[i][0].id not in exclude
            ]
            if len(found) >= wanted or fetch >= len(generation.index):
                break
            fetch *= 4
        if not shaping:
            return found[:top_k]
        return self._shape(generation, vector, found, top_k, diversity, dedup_threshold)

    def _shape(
        self,
        generation: Generation,
        vector: np.ndarray,
        found: list[Found],
        top_k: int,
        diversity: float,
        dedup_threshold: float,
    ) -> list[Found]:
        candidates = generation.index.vectors(np.array([f.embedding_id for f in found], np.int64))
        order = list(range(len(found)))
        if dedup_threshold > 0:
            order = navigation.collapse_near_duplicates(candidates, dedup_threshold)
        if diversity > 0:
            picked = navigation.mmr(vector, candidates[order], min(top_k, len(order)), diversity)
            order = [order[i] for i in picked]
        return [found[i] for i in order[:top_k]]

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
