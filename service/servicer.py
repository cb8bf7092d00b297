"""The SearchService servicer: embeds the query, searches a live generation, joins the catalog."""

from __future__ import annotations

import time
from dataclasses import replace

import grpc
import numpy as np

from latent.algebra import Term, compose, embed_term, needs_encoder, terms_from_expression
from latent.catalog import Catalog
from latent.encoders import EncoderCache
from latent.errors import InvalidArgument
from latent.expressions import MAX_TERMS
from latent.live import Generation
from latent.settings import Settings
from service._pb.assetsearch.v1 import search_pb2 as pb
from service._pb.assetsearch.v1 import search_pb2_grpc as pb_grpc
from service.convert import asset_message, collection_message, struct, term_from_message
from service.indexes import IndexRegistry

DEFAULT_TOP_K = 10


class SearchServicer(pb_grpc.SearchServiceServicer):
    """Implements ``assetsearch.v1.SearchService``; errors are mapped by the interceptor."""

    def __init__(
        self, settings: Settings, catalog: Catalog, indexes: IndexRegistry, encoders: EncoderCache
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.indexes = indexes
        self.encoders = encoders

    def Search(self, request: pb.SearchRequest, context: grpc.ServicerContext) -> pb.SearchResponse:  # noqa: N802
        """Nearest assets to one query term."""
        started = time.perf_counter()
        top_k = self._top_k(request.top_k)
        terms = self._terms(request)
        live = self.indexes.get(request.collection or self.settings.collection)
        collection = live.collection
        encoder = (
            self.encoders.get(collection.model_spec) if any(map(needs_encoder, terms)) else None
        )
        vectors = [
            embed_term(t, self.catalog, collection, encoder, self.settings.max_image_pixels)
            for t in terms
        ]
        vector = compose(vectors, [t.weight for t in terms])
        generation = live.generation
        hits = self._nearest(generation, vector, top_k)
        return pb.SearchResponse(
            hits=hits,
            collection=collection.name,
            index_seq=generation.seq,
            index_size=len(generation.index),
            took_ms=(time.perf_counter() - started) * 1000,
        )

    def GetAsset(self, request: pb.GetAssetRequest, context: grpc.ServicerContext) -> pb.Asset:  # noqa: N802
        """One asset by id."""
        if request.asset_id <= 0:
            raise InvalidArgument("asset_id must be a positive asset id")
        return asset_message(self.catalog.asset(request.asset_id))

    def ListCollections(  # noqa: N802
        self, request: pb.ListCollectionsRequest, context: grpc.ServicerContext
    ) -> pb.ListCollectionsResponse:
        """Every collection with its counts and served generation."""
        out = []
        loaded = self.indexes.all()
        for info in self.catalog.collections():
            live = loaded.get(info.name)
            size, seq = (len(live.generation.index), live.generation.seq) if live else (0, 0)
            out.append(collection_message(info, size, seq))
        return pb.ListCollectionsResponse(collections=out)

    def _terms(self, request: pb.SearchRequest) -> list[Term]:
        given = [request.HasField("query"), len(request.terms) > 0, bool(request.expression)]
        if sum(given) != 1:
            raise InvalidArgument(
                "set exactly one of query, terms or expression (a query term is text, image, "
                "asset_id or vector)"
            )
        if request.HasField("query"):
            return [replace(term_from_message(request.query), weight=1.0)]
        if request.terms:
            if len(request.terms) > MAX_TERMS:
                raise InvalidArgument(
                    f"at most {MAX_TERMS} terms per query, got {len(request.terms)}"
                )
            return [term_from_message(t) for t in request.terms]
        return terms_from_expression(request.expression)

    def _top_k(self, requested: int) -> int:
        if requested < 0 or requested > self.settings.max_top_k:
            raise InvalidArgument(
                f"top_k must be between 1 and {self.settings.max_top_k}, got {requested}"
            )
        return requested or DEFAULT_TOP_K

    def _nearest(self, generation: Generation, vector: np.ndarray, top_k: int) -> list[pb.Hit]:
        """Top-k hits of indexed assets; over-fetches when some ids are no longer indexed."""
        fetch = top_k
        while True:
            scores, ids = generation.index.search(vector, fetch)
            pairs = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
            found = self.catalog.hits_for_embeddings([i for i, _ in pairs])
            hits = [_hit(found[i], score) for i, score in pairs if i in found]
            if len(hits) >= top_k or fetch >= len(generation.index):
                return hits[:top_k]
            fetch *= 4


def _hit(found: tuple, score: float) -> pb.Hit:
    asset, start, end = found
    return pb.Hit(
        asset_id=asset.id,
        uri=asset.uri,
        score=score,
        media_type=asset.media_type,
        width=asset.width or 0,
        height=asset.height or 0,
        segment_start=start,
        segment_end=end,
        metadata=struct(asset.metadata),
    )
