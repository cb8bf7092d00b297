"""The SearchService servicer: thin methods over the query engine; errors go to the interceptor."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb
from assetsearch_client._pb.assetsearch.v1 import search_pb2_grpc as pb_grpc

from latent.catalog import Catalog, DirectionRecord
from latent.errors import InvalidArgument
from latent.index.live import Generation, LiveIndex
from latent.models.encoders import EncoderCache
from latent.query import navigation
from latent.query.projection import Projection
from latent.query.terms import Asset, Term, Text, describe
from latent.settings import Settings
from service import paging
from service.convert import (
    asset_message,
    collection_message,
    direction_message,
    example_from_message,
    filter_from_message,
    hit_message,
)
from service.imports import import_batch
from service.indexes import IndexRegistry
from service.queries import Composed, Found, Page, QueryEngine

DEFAULT_MAP_POINTS = 5000
MAX_MAP_POINTS = 50_000
DIRECTION_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}")
MAX_EXAMPLES = 256
DEFAULT_VARIATIONS = 8
VARIATION_POOL = 1000
VARIATION_DIVERSITY = 0.3
DEFAULT_RADIUS = 0.5


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
        terms = self.engine.search_terms(request)
        live = self.engine.live(request.collection)
        fingerprint = paging.fingerprint(request, live.collection.name)
        token = paging.decode(request.page_token, fingerprint) if request.page_token else None
        composed = self.engine.compose(live, terms)
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
            response.explanation.CopyFrom(_explanation(composed, vector, density, snapped))
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
        return import_batch(self.catalog, request, self.engine.settings.collection)

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
            if live is None:
                out.append(collection_message(info, 0, 0))
                continue
            generation = live.generation
            out.append(
                collection_message(info, len(generation.index), generation.seq, generation.index)
            )
        return pb.ListCollectionsResponse(collections=out)

    # -- moves ----------------------------------------------------------------------------

    def Interpolate(  # noqa: N802
        self, request: pb.InterpolateRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.StepResult]:
        """One result set per step from source to target."""
        method = request.method or "slerp"
        if method not in ("lerp", "slerp"):
            raise InvalidArgument(f"method must be 'lerp' or 'slerp', got {method!r}")
        top_k = self.engine.top_k(request.top_k)
        live = self.engine.live(request.collection)
        source = self._query(live, request.source, "source")
        target = self._query(live, request.target, "target")
        path = navigation.interpolate(source.vector, target.vector, request.steps or 5, method)  # type: ignore[arg-type]
        yield from self._walk(live, path, top_k, request.dedupe, request.filter)

    def Traverse(
        self, request: pb.TraverseRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.StepResult]:  # noqa: N802
        """One result set per step along origin + t * direction."""
        top_k = self.engine.top_k(request.top_k)
        live = self.engine.live(request.collection)
        origin = self._query(live, request.origin, "origin")
        direction = self._direction_vector(live, request)
        step = request.step if request.HasField("step") else 0.25
        path = navigation.traverse(origin.vector, direction, step, request.steps or 5)
        yield from self._walk(live, path, top_k, request.dedupe, request.filter)

    def Variations(  # noqa: N802
        self, request: pb.VariationsRequest, context: grpc.ServicerContext
    ) -> pb.VariationsResponse:
        """Assets a small, distinct move away from a seed, nearest first."""
        started = time.perf_counter()
        limit = self.engine.settings.max_top_k
        if not 0 <= request.n <= limit:
            raise InvalidArgument(f"n must be between 1 and {limit}, got {request.n}")
        n = request.n or DEFAULT_VARIATIONS
        live = self.engine.live(request.collection)
        seed = self._query(live, request.seed, "seed")
        radius = request.radius if request.HasField("radius") else self._default_radius(live)
        min_distance = (
            request.min_distance
            if request.HasField("min_distance")
            else min(navigation.DUPLICATE_DISTANCE, radius / 2)
        )
        diversity = request.diversity if request.HasField("diversity") else VARIATION_DIVERSITY
        navigation.check_band(radius, min_distance, diversity)
        generation = live.generation
        own = frozenset(t.asset_id for t in seed.terms if isinstance(t, Asset))
        found = _one_per_asset(
            self.engine.nearest(generation, seed.vector, VARIATION_POOL, exclude=own)
        )
        vectors = generation.index.vectors(np.array([f.embedding_id for f in found], np.int64))
        picks = navigation.pick_variations(seed.vector, vectors, n, radius, min_distance, diversity)
        chosen = sorted((found[i] for i in picks.indices), key=lambda f: -f.score)
        return pb.VariationsResponse(
            hits=[hit_message(f) for f in chosen],
            collection=live.collection.name,
            radius=radius,
            min_distance=min_distance,
            in_band=picks.in_band,
            index_seq=generation.seq,
            index_size=len(generation.index),
            took_ms=(time.perf_counter() - started) * 1000,
        )

    def _default_radius(self, live: LiveIndex) -> float:
        """1.5 x the typical distance of an asset to its nearest others, within [0.05, 1]."""
        typical = self.engine.typical_similarity(live)
        if typical is None:
            return DEFAULT_RADIUS
        return float(np.clip(1.5 * (1.0 - typical), 0.05, 1.0))

    def _query(self, live: LiveIndex, query: pb.Query, what: str) -> Composed:
        return self.engine.compose(live, self.engine.terms(query.terms, query.expression, what))

    def _direction_vector(self, live: LiveIndex, request: pb.TraverseRequest) -> np.ndarray:
        kind = request.WhichOneof("direction")
        if kind == "named":
            return self.catalog.direction(live.collection, request.named).vector
        if kind == "texts":
            pair: list[Term] = [Text(request.texts.source), Text(request.texts.target)]
            composed = self.engine.compose(live, pair)
            return composed.term_vectors[1] - composed.term_vectors[0]
        if kind == "principal_component":
            k = request.principal_component
            if not 0 <= k < min(64, live.collection.dim):
                raise InvalidArgument(f"principal_component must be between 0 and 63, got {k}")
            matrix = live.generation.index.matrix()
            if len(matrix) < k + 2:
                raise InvalidArgument(f"collection has too few assets for principal component {k}")
            return navigation.principal_components(matrix, k + 1)[k]
        raise InvalidArgument("set a direction: named, texts or principal_component")

    def _walk(
        self,
        live: LiveIndex,
        path: list[tuple[float, np.ndarray]],
        top_k: int,
        dedupe: bool,
        where: pb.Filter,
    ) -> Iterator[pb.StepResult]:
        generation = live.generation  # one generation for the whole walk: consistent steps
        scope = self.engine.scope(live, generation, filter_from_message(where), top_k)
        shown: set[int] = set()
        for step, (t, vector) in enumerate(path):
            found = self.engine.nearest(
                generation,
                vector,
                top_k,
                exclude=frozenset(shown) if dedupe else frozenset(),
                scope=scope,
            )
            shown.update(f.asset.id for f in found)
            yield pb.StepResult(step=step, t=t, hits=[hit_message(f) for f in found])

    # -- named directions -------------------------------------------------------------------

    def CreateDirection(
        self, request: pb.CreateDirectionRequest, context: grpc.ServicerContext
    ) -> pb.Direction:  # noqa: N802
        """Store mean(positive) - mean(negative), optionally orthogonal to other directions."""
        if not DIRECTION_NAME.fullmatch(request.name):
            raise InvalidArgument("direction name must be 1-200 letters, digits, '_', '-' or '.'")
        if not request.positive and not request.negative:
            raise InvalidArgument("give at least one positive or negative example")
        if len(request.positive) + len(request.negative) > MAX_EXAMPLES:
            raise InvalidArgument(f"at most {MAX_EXAMPLES} examples per direction")
        live = self.engine.live(request.collection)
        positive = self._examples(live, request.positive)
        negative = self._examples(live, request.negative)
        others = [self.catalog.direction(live.collection, n).vector for n in request.orthogonal_to]
        vector = navigation.direction_from_examples(
            _stack(positive, live.collection.dim), _stack(negative, live.collection.dim), others
        )
        record = DirectionRecord(
            name=request.name,
            vector=vector.astype(np.float32),
            norm=float(np.linalg.norm(vector)),
            examples={
                "positive": _describe(request.positive),
                "negative": _describe(request.negative),
            },
            orthogonal_to=tuple(request.orthogonal_to),
        )
        saved = self.catalog.save_direction(live.collection, record)
        return direction_message(saved, self.catalog.directions(live.collection))

    def _examples(self, live: LiveIndex, examples: list[pb.DirectionExample]) -> list[np.ndarray]:
        terms: list[Term] = [example_from_message(e) for e in examples]
        return self.engine.compose(live, terms).term_vectors if terms else []

    def ListDirections(
        self, request: pb.ListDirectionsRequest, context: grpc.ServicerContext
    ) -> pb.ListDirectionsResponse:  # noqa: N802
        """Every direction with its cosines to the others."""
        live = self.engine.live(request.collection)
        records = self.catalog.directions(live.collection)
        return pb.ListDirectionsResponse(
            directions=[direction_message(r, records) for r in records]
        )

    def GetDirection(
        self, request: pb.GetDirectionRequest, context: grpc.ServicerContext
    ) -> pb.Direction:  # noqa: N802
        """One direction with its cosines to the others."""
        live = self.engine.live(request.collection)
        record = self.catalog.direction(live.collection, request.name)
        return direction_message(record, self.catalog.directions(live.collection))

    def Project(
        self, request: pb.ProjectRequest, context: grpc.ServicerContext
    ) -> pb.ProjectResponse:  # noqa: N802
        """A 2-D projection of (a sample of) the collection, with an optional path."""
        max_points = request.max_points or DEFAULT_MAP_POINTS
        if not 2 <= max_points <= MAX_MAP_POINTS:
            raise InvalidArgument(
                f"max_points must be between 2 and {MAX_MAP_POINTS}, got {max_points}"
            )
        live = self.engine.live(request.collection)
        generation = live.generation
        ids, matrix = generation.index.ids(), generation.index.matrix()
        if len(ids) < 3:
            raise InvalidArgument(f"collection {live.collection.name!r} has too few assets to map")
        if len(ids) > max_points:
            pick = np.sort(np.random.default_rng(0).choice(len(ids), max_points, replace=False))
            ids, matrix = ids[pick], matrix[pick]
        projection = Projection.fit(np.ascontiguousarray(matrix), method=request.method or "pca")  # type: ignore[arg-type]
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
                else metadata_value(asset.metadata, request.color_by)
            )
            response.points.append(
                pb.ProjectedPoint(asset_id=asset.id, uri=asset.uri, x=x, y=y, color=color)
            )
        if request.HasField("path_source") or request.HasField("path_target"):
            response.path.extend(self._map_path(live, request, projection))
        return response

    def _map_path(
        self, live: LiveIndex, request: pb.ProjectRequest, projection: Projection
    ) -> list[pb.PathPoint]:
        source = self._query(live, request.path_source, "path_source")
        target = self._query(live, request.path_target, "path_target")
        path = navigation.interpolate(
            source.vector, target.vector, request.path_steps or 8, "slerp"
        )
        points = projection.transform(np.stack([v for _, v in path]))
        out = []
        for step, ((t, vector), (x, y)) in enumerate(zip(path, points.tolist(), strict=True)):
            nearest = self.engine.nearest(live.generation, vector, 1)
            out.append(
                pb.PathPoint(
                    step=step, t=t, x=x, y=y, nearest_asset_id=nearest[0].asset.id if nearest else 0
                )
            )
        return out

    def DeleteDirection(  # noqa: N802
        self, request: pb.DeleteDirectionRequest, context: grpc.ServicerContext
    ) -> pb.DeleteDirectionResponse:
        """Delete a direction."""
        live = self.engine.live(request.collection)
        self.catalog.delete_direction(live.collection, request.name)
        return pb.DeleteDirectionResponse()


def metadata_value(metadata: dict[str, Any], path: str) -> str:
    """The string value at a dotted path ("objects.0.color"); "" when absent."""
    value: Any = metadata
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return ""
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


def _one_per_asset(found: list[Found]) -> list[Found]:
    """The best-ranked embedding of each asset (a video has one per segment)."""
    seen: set[int] = set()
    out = []
    for f in found:
        if f.asset.id not in seen:
            seen.add(f.asset.id)
            out.append(f)
    return out


def _stack(vectors: list[np.ndarray], dim: int) -> np.ndarray:
    return np.stack(vectors) if vectors else np.zeros((0, dim), np.float32)


def _describe(examples: list[pb.DirectionExample]) -> list[str]:
    out = []
    for e in examples:
        kind = e.WhichOneof("kind")
        if kind == "text":
            out.append(f'"{e.text}"')
        elif kind == "asset_id":
            out.append(f"asset:{e.asset_id}")
        else:
            out.append(f"image:sha256:{hashlib.sha256(e.image).hexdigest()}")
    return out


def _explanation(
    composed: Composed, vector: np.ndarray, density: navigation.DensityReport | None, snapped: bool
) -> pb.Explanation:
    out = pb.Explanation(
        query_vector=pb.Vector(values=vector.tolist()), terms=[describe(t) for t in composed.terms]
    )
    if density is not None:
        out.density.CopyFrom(
            pb.Density(
                knn_similarity=density.knn_similarity,
                typical_similarity=density.typical_similarity,
                ratio=density.ratio,
                is_hole=density.is_hole,
                snapped=snapped,
            )
        )
    return out
