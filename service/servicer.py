"""The SearchService servicer: messages to domain values, through the engine, and back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb
from assetsearch_client._pb.assetsearch.v1 import search_pb2_grpc as pb_grpc

from latent.errors import InvalidArgument
from latent.names import value_at
from latent.query import navigation
from latent.query.projection import Projection
from service import moves, paging
from service.auth import allowed_collections, require_collection
from service.convert.filters import filter_from_message
from service.convert.queries import (
    example_from_message,
    search_query,
    terms_from_messages,
)
from service.convert.records import (
    asset_message,
    collection_message,
    direction_message,
    explanation_message,
    hit_message,
)
from service.deadlines import Check, checker, no_check
from service.engine import QueryEngine
from service.imports import import_batch

if TYPE_CHECKING:
    from latent.catalog import Catalog
    from latent.index.live import Generation, LiveIndex
    from latent.models.encoders import EncoderCache
    from latent.settings import Settings
    from service.indexes import IndexRegistry
    from service.results import Composed, Found, Page

DEFAULT_MAP_POINTS = 5000
MAX_MAP_POINTS = 50_000


class SearchServicer(pb_grpc.SearchServiceServicer):
    """Implements ``assetsearch.v1.SearchService``."""

    def __init__(
        self, settings: Settings, catalog: Catalog, indexes: IndexRegistry, encoders: EncoderCache
    ) -> None:
        self.catalog = catalog
        self.indexes = indexes
        self.engine = QueryEngine(settings, catalog, indexes, encoders)

    # -- search ---------------------------------------------------------------------------

    def Search(self, request: pb.SearchRequest, context: grpc.ServicerContext) -> pb.SearchResponse:  # noqa: N802
        """Nearest assets to a query, filtered, paged, explained, diversified, de-duplicated."""
        started = time.perf_counter()
        top_k = self.engine.top_k(request.top_k)
        _check_unit_interval("diversity", request.diversity, allow_zero=True)
        _check_unit_interval("dedup_threshold", request.dedup_threshold, allow_zero=True)
        where = filter_from_message(request.filter)
        terms = self.engine.terms(*search_query(request))
        live = self.engine.live(request.collection)
        fingerprint = paging.fingerprint(request, live.collection.name)
        token = paging.decode(request.page_token, fingerprint) if request.page_token else None
        composed = self.engine.compose(live, terms, checker(context))
        vector, density = composed.vector, None
        if request.explain or request.snap:
            density = self.engine.density(live, vector)
        snapped = bool(request.snap and density is not None and density.is_hole)
        if snapped:
            vector = self.engine.snap(live, vector)
        generation = live.generation
        offset = token.offset if token else 0
        page = self.engine.page(
            generation,
            vector,
            top_k,
            offset=offset,
            pool=token.pool if token else 0,
            diversity=request.diversity,
            dedup_threshold=request.dedup_threshold,
            scope=self.engine.scope(live, generation, where, top_k),
        )
        found = page.found
        response = pb.SearchResponse(
            collection=live.collection.name,
            index_seq=generation.seq,
            index_size=len(generation.index),
            offset=offset,
            collection_changed=token is not None and token.seq != generation.seq,
            next_page_token=_next_token(page, fingerprint, offset + top_k, generation.seq),
        )
        cosines = self._term_cosines(generation, composed, found) if request.explain else None
        for i, f in enumerate(found):
            response.hits.append(hit_message(f, None if cosines is None else cosines[i]))
        if request.explain:
            response.explanation.CopyFrom(explanation_message(composed, vector, density, snapped))
        response.took_ms = (time.perf_counter() - started) * 1000
        return response

    def _term_cosines(
        self, generation: Generation, composed: Composed, found: list[Found]
    ) -> np.ndarray:
        # The generation the hits came from: a newer one may no longer hold their vectors.
        vectors = generation.index.vectors(np.array([f.embedding_id for f in found], np.int64))
        return navigation.cosine_matrix(vectors, np.stack(composed.term_vectors))

    def ImportVectors(  # noqa: N802
        self, request: pb.ImportVectorsRequest, context: grpc.ServicerContext
    ) -> pb.ImportVectorsResponse:
        """Write one batch of externally computed vectors (searchable after the next poll)."""
        return import_batch(self.catalog, request, self.engine.settings)

    def GetAsset(  # noqa: N802
        self, request: pb.GetAssetRequest, context: grpc.ServicerContext
    ) -> pb.GetAssetResponse:
        """One asset by id."""
        if request.asset_id <= 0:
            raise InvalidArgument("asset_id must be a positive asset id")
        asset = self.catalog.asset(request.asset_id)
        require_collection(asset.collection)
        return pb.GetAssetResponse(asset=asset_message(asset))

    def ListCollections(  # noqa: N802
        self, request: pb.ListCollectionsRequest, context: grpc.ServicerContext
    ) -> pb.ListCollectionsResponse:
        """Every collection with its counts and served generation (those the key may use)."""
        out = []
        loaded = self.indexes.all()
        allowed = allowed_collections()
        for info in self.catalog.collections():
            if allowed is not None and info.name not in allowed:
                continue
            live = loaded.get(info.name)
            head = self.catalog.head_seq(info.id)
            if live is None:
                out.append(collection_message(info, 0, 0, head_seq=head))
                continue
            generation = live.generation
            size, seq = len(generation.index), generation.seq
            out.append(collection_message(info, size, seq, generation.index, head_seq=head))
        return pb.ListCollectionsResponse(collections=out)

    # -- moves ----------------------------------------------------------------------------

    def Interpolate(  # noqa: N802
        self, request: pb.InterpolateRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.InterpolateResponse]:
        """One result set per step from source to target."""
        method = request.method or "slerp"
        if method not in ("lerp", "slerp"):
            raise InvalidArgument(f"method must be 'lerp' or 'slerp', got {method!r}")
        top_k = self.engine.top_k(request.top_k)
        steps = self.engine.steps(request.steps, 2, default=5)
        live = self.engine.live(request.collection)
        check = checker(context)
        source = self._query(live, request.source, "source", check)
        target = self._query(live, request.target, "target", check)
        path = navigation.interpolate(
            source.vector,
            target.vector,
            steps,
            method,  # type: ignore[arg-type]
            max_steps=self.engine.settings.max_steps,
        )
        where = filter_from_message(request.filter)
        for s in moves.walk(self.engine, live, path, top_k, request.dedupe, where, check):
            yield pb.InterpolateResponse(step=s.step, t=s.t, hits=[hit_message(f) for f in s.found])

    def Traverse(  # noqa: N802
        self, request: pb.TraverseRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.TraverseResponse]:
        """One result set per step along origin + t * direction."""
        top_k = self.engine.top_k(request.top_k)
        steps = self.engine.steps(request.steps, 1, default=5)
        live = self.engine.live(request.collection)
        check = checker(context)
        origin = self._query(live, request.origin, "origin", check)
        direction = self._direction_vector(live, request)
        step = request.step if request.HasField("step") else 0.25
        max_steps = self.engine.settings.max_steps
        path = navigation.traverse(origin.vector, direction, step, steps, max_steps=max_steps)
        where = filter_from_message(request.filter)
        for s in moves.walk(self.engine, live, path, top_k, request.dedupe, where, check):
            yield pb.TraverseResponse(step=s.step, t=s.t, hits=[hit_message(f) for f in s.found])

    def _direction_vector(self, live: LiveIndex, request: pb.TraverseRequest) -> np.ndarray:
        match request.WhichOneof("direction"):
            case "named":
                return self.catalog.direction(live.collection, request.named).vector
            case "texts":
                pair = request.texts
                return moves.text_direction(self.engine, live, pair.source, pair.target)
            case "principal_component":
                return moves.principal_direction(live, request.principal_component)
        raise InvalidArgument("set a direction: named, texts or principal_component")

    def Variations(  # noqa: N802
        self, request: pb.VariationsRequest, context: grpc.ServicerContext
    ) -> pb.VariationsResponse:
        """Assets a small, distinct move away from a seed, nearest first."""
        started = time.perf_counter()
        n = moves.variation_count(request.n, self.engine.settings)
        live = self.engine.live(request.collection)
        seed = self._query(live, request.seed, "seed", checker(context))
        out = moves.variations(
            self.engine,
            live,
            seed,
            n,
            radius=request.radius if request.HasField("radius") else None,
            min_distance=request.min_distance if request.HasField("min_distance") else None,
            diversity=request.diversity if request.HasField("diversity") else None,
        )
        return pb.VariationsResponse(
            hits=[hit_message(f) for f in out.found],
            collection=live.collection.name,
            radius=out.radius,
            min_distance=out.min_distance,
            in_band=out.in_band,
            index_seq=out.seq,
            index_size=out.size,
            took_ms=(time.perf_counter() - started) * 1000,
        )

    def _query(
        self, live: LiveIndex, query: pb.Query, what: str, check: Check = no_check
    ) -> Composed:
        terms = self.engine.terms(terms_from_messages(query.terms), query.expression, what)
        return self.engine.compose(live, terms, check)

    # -- named directions -------------------------------------------------------------------

    def CreateDirection(  # noqa: N802
        self, request: pb.CreateDirectionRequest, context: grpc.ServicerContext
    ) -> pb.CreateDirectionResponse:
        """Store mean(positive) - mean(negative), optionally orthogonal to other directions."""
        saved = moves.create_direction(
            self.engine,
            request.collection,
            request.name,
            [example_from_message(e) for e in request.positive],
            [example_from_message(e) for e in request.negative],
            list(request.orthogonal_to),
        )
        others = self.catalog.directions(self.engine.live(request.collection).collection)
        return pb.CreateDirectionResponse(direction=direction_message(saved, others))

    def ListDirections(  # noqa: N802
        self, request: pb.ListDirectionsRequest, context: grpc.ServicerContext
    ) -> pb.ListDirectionsResponse:
        """Every direction with its cosines to the others."""
        live = self.engine.live(request.collection)
        records = self.catalog.directions(live.collection)
        return pb.ListDirectionsResponse(
            directions=[direction_message(r, records) for r in records]
        )

    def GetDirection(  # noqa: N802
        self, request: pb.GetDirectionRequest, context: grpc.ServicerContext
    ) -> pb.GetDirectionResponse:
        """One direction with its cosines to the others."""
        live = self.engine.live(request.collection)
        record = self.catalog.direction(live.collection, request.name)
        others = self.catalog.directions(live.collection)
        return pb.GetDirectionResponse(direction=direction_message(record, others))

    def DeleteDirection(  # noqa: N802
        self, request: pb.DeleteDirectionRequest, context: grpc.ServicerContext
    ) -> pb.DeleteDirectionResponse:
        """Delete a direction."""
        live = self.engine.live(request.collection)
        self.catalog.delete_direction(live.collection, request.name)
        return pb.DeleteDirectionResponse()

    # -- maps -------------------------------------------------------------------------------

    def Project(  # noqa: N802
        self, request: pb.ProjectRequest, context: grpc.ServicerContext
    ) -> pb.ProjectResponse:
        """A 2-D projection of (a sample of) the collection, with an optional path."""
        max_points = request.max_points or DEFAULT_MAP_POINTS
        if not 2 <= max_points <= MAX_MAP_POINTS:
            raise InvalidArgument(
                f"max_points must be between 2 and {MAX_MAP_POINTS}, got {max_points}"
            )
        path_steps = self.engine.steps(request.path_steps, 2, default=8)
        live = self.engine.live(request.collection)
        check = checker(context)
        generation = live.generation
        ids, matrix = generation.index.ids(), generation.index.matrix()
        if len(ids) < 3:
            raise InvalidArgument(f"collection {live.collection.name!r} has too few assets to map")
        if len(ids) > max_points:
            pick = np.sort(np.random.default_rng(0).choice(len(ids), max_points, replace=False))
            ids, matrix = ids[pick], matrix[pick]
        check()
        projection = Projection.fit(np.ascontiguousarray(matrix), method=request.method or "pca")  # type: ignore[arg-type]
        check()  # fitting (UMAP above all) is the long phase: stop if the caller is gone
        xy = projection.transform(matrix)
        joined = self.catalog.hits_for_embeddings(ids.tolist())
        response = pb.ProjectResponse(method=projection.method, total=len(generation.index))
        for emb_id, (x, y) in zip(ids.tolist(), xy.tolist(), strict=True):
            if emb_id not in joined:
                continue
            asset = joined[emb_id][0]
            color = (
                asset.media_type
                if request.color_by == "media_type"
                else _color(value_at(asset.metadata, request.color_by))
            )
            response.points.append(
                pb.ProjectedPoint(asset_id=asset.id, uri=asset.uri, x=x, y=y, color=color)
            )
        if request.HasField("path_source") or request.HasField("path_target"):
            path = self._map_path(live, request, projection, path_steps, check)
            response.path.extend(path)
        return response

    def _map_path(
        self,
        live: LiveIndex,
        request: pb.ProjectRequest,
        projection: Projection,
        steps: int,
        check: Check,
    ) -> list[pb.PathPoint]:
        source = self._query(live, request.path_source, "path_source", check)
        target = self._query(live, request.path_target, "path_target", check)
        max_steps = self.engine.settings.max_steps
        path = navigation.interpolate(source.vector, target.vector, steps, max_steps=max_steps)
        points = projection.transform(np.stack([v for _, v in path]))
        out = []
        for step, ((t, vector), (x, y)) in enumerate(zip(path, points.tolist(), strict=True)):
            check()
            nearest = self.engine.nearest(live.generation, vector, 1)
            out.append(
                pb.PathPoint(
                    step=step, t=t, x=x, y=y, nearest_asset_id=nearest[0].asset.id if nearest else 0
                )
            )
        return out


def _color(value: Any) -> str:
    """A metadata value as a map colour: a scalar as text, anything else (or none) as ""."""
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def _next_token(page: Page, fingerprint: str, offset: int, seq: int) -> str:
    """The token of the page after this one; "" at the end or the depth limit."""
    if not page.more or offset >= paging.MAX_PAGE_DEPTH:
        return ""
    return paging.PageToken(fingerprint, offset, seq, page.pool).encode()


def _check_unit_interval(name: str, value: float, allow_zero: bool) -> None:
    if not (0.0 <= value <= 1.0) or (value == 0.0 and not allow_zero):
        raise InvalidArgument(f"{name} must be in [0, 1], got {value}")
