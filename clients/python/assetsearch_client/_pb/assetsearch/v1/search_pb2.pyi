import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Vector(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class QueryTerm(_message.Message):
    __slots__ = ("text", "image", "asset_id", "vector", "direction", "weight")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    text: str
    image: bytes
    asset_id: int
    vector: Vector
    direction: str
    weight: float
    def __init__(self, text: _Optional[str] = ..., image: _Optional[bytes] = ..., asset_id: _Optional[int] = ..., vector: _Optional[_Union[Vector, _Mapping]] = ..., direction: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("collection", "query", "top_k", "terms", "expression", "explain", "diversity", "dedup_threshold", "snap", "filter", "page_token")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    DIVERSITY_FIELD_NUMBER: _ClassVar[int]
    DEDUP_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SNAP_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    collection: str
    query: QueryTerm
    top_k: int
    terms: _containers.RepeatedCompositeFieldContainer[QueryTerm]
    expression: str
    explain: bool
    diversity: float
    dedup_threshold: float
    snap: bool
    filter: Filter
    page_token: str
    def __init__(self, collection: _Optional[str] = ..., query: _Optional[_Union[QueryTerm, _Mapping]] = ..., top_k: _Optional[int] = ..., terms: _Optional[_Iterable[_Union[QueryTerm, _Mapping]]] = ..., expression: _Optional[str] = ..., explain: _Optional[bool] = ..., diversity: _Optional[float] = ..., dedup_threshold: _Optional[float] = ..., snap: _Optional[bool] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ..., page_token: _Optional[str] = ...) -> None: ...

class Query(_message.Message):
    __slots__ = ("terms", "expression")
    TERMS_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    terms: _containers.RepeatedCompositeFieldContainer[QueryTerm]
    expression: str
    def __init__(self, terms: _Optional[_Iterable[_Union[QueryTerm, _Mapping]]] = ..., expression: _Optional[str] = ...) -> None: ...

class Density(_message.Message):
    __slots__ = ("knn_similarity", "typical_similarity", "ratio", "is_hole", "snapped")
    KNN_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    TYPICAL_SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    RATIO_FIELD_NUMBER: _ClassVar[int]
    IS_HOLE_FIELD_NUMBER: _ClassVar[int]
    SNAPPED_FIELD_NUMBER: _ClassVar[int]
    knn_similarity: float
    typical_similarity: float
    ratio: float
    is_hole: bool
    snapped: bool
    def __init__(self, knn_similarity: _Optional[float] = ..., typical_similarity: _Optional[float] = ..., ratio: _Optional[float] = ..., is_hole: _Optional[bool] = ..., snapped: _Optional[bool] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("query_vector", "terms", "density")
    QUERY_VECTOR_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    DENSITY_FIELD_NUMBER: _ClassVar[int]
    query_vector: Vector
    terms: _containers.RepeatedScalarFieldContainer[str]
    density: Density
    def __init__(self, query_vector: _Optional[_Union[Vector, _Mapping]] = ..., terms: _Optional[_Iterable[str]] = ..., density: _Optional[_Union[Density, _Mapping]] = ...) -> None: ...

class Hit(_message.Message):
    __slots__ = ("asset_id", "uri", "score", "media_type", "width", "height", "segment_start", "segment_end", "metadata", "term_cosines")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_START_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_END_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TERM_COSINES_FIELD_NUMBER: _ClassVar[int]
    asset_id: int
    uri: str
    score: float
    media_type: str
    width: int
    height: int
    segment_start: float
    segment_end: float
    metadata: _struct_pb2.Struct
    term_cosines: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, asset_id: _Optional[int] = ..., uri: _Optional[str] = ..., score: _Optional[float] = ..., media_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., segment_start: _Optional[float] = ..., segment_end: _Optional[float] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., term_cosines: _Optional[_Iterable[float]] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("hits", "collection", "index_seq", "index_size", "took_ms", "explanation", "next_page_token", "offset", "collection_changed")
    HITS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    INDEX_SEQ_FIELD_NUMBER: _ClassVar[int]
    INDEX_SIZE_FIELD_NUMBER: _ClassVar[int]
    TOOK_MS_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_CHANGED_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[Hit]
    collection: str
    index_seq: int
    index_size: int
    took_ms: float
    explanation: Explanation
    next_page_token: str
    offset: int
    collection_changed: bool
    def __init__(self, hits: _Optional[_Iterable[_Union[Hit, _Mapping]]] = ..., collection: _Optional[str] = ..., index_seq: _Optional[int] = ..., index_size: _Optional[int] = ..., took_ms: _Optional[float] = ..., explanation: _Optional[_Union[Explanation, _Mapping]] = ..., next_page_token: _Optional[str] = ..., offset: _Optional[int] = ..., collection_changed: _Optional[bool] = ...) -> None: ...

class InterpolateRequest(_message.Message):
    __slots__ = ("collection", "source", "target", "steps", "method", "top_k", "dedupe", "filter")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    DEDUPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    collection: str
    source: Query
    target: Query
    steps: int
    method: str
    top_k: int
    dedupe: bool
    filter: Filter
    def __init__(self, collection: _Optional[str] = ..., source: _Optional[_Union[Query, _Mapping]] = ..., target: _Optional[_Union[Query, _Mapping]] = ..., steps: _Optional[int] = ..., method: _Optional[str] = ..., top_k: _Optional[int] = ..., dedupe: _Optional[bool] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ...) -> None: ...

class TraverseRequest(_message.Message):
    __slots__ = ("collection", "origin", "named", "texts", "principal_component", "step", "steps", "top_k", "dedupe", "filter")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    NAMED_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_COMPONENT_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    DEDUPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    collection: str
    origin: Query
    named: str
    texts: TextPair
    principal_component: int
    step: float
    steps: int
    top_k: int
    dedupe: bool
    filter: Filter
    def __init__(self, collection: _Optional[str] = ..., origin: _Optional[_Union[Query, _Mapping]] = ..., named: _Optional[str] = ..., texts: _Optional[_Union[TextPair, _Mapping]] = ..., principal_component: _Optional[int] = ..., step: _Optional[float] = ..., steps: _Optional[int] = ..., top_k: _Optional[int] = ..., dedupe: _Optional[bool] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ...) -> None: ...

class TextPair(_message.Message):
    __slots__ = ("source", "target")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    source: str
    target: str
    def __init__(self, source: _Optional[str] = ..., target: _Optional[str] = ...) -> None: ...

class InterpolateResponse(_message.Message):
    __slots__ = ("step", "t", "hits")
    STEP_FIELD_NUMBER: _ClassVar[int]
    T_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    step: int
    t: float
    hits: _containers.RepeatedCompositeFieldContainer[Hit]
    def __init__(self, step: _Optional[int] = ..., t: _Optional[float] = ..., hits: _Optional[_Iterable[_Union[Hit, _Mapping]]] = ...) -> None: ...

class TraverseResponse(_message.Message):
    __slots__ = ("step", "t", "hits")
    STEP_FIELD_NUMBER: _ClassVar[int]
    T_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    step: int
    t: float
    hits: _containers.RepeatedCompositeFieldContainer[Hit]
    def __init__(self, step: _Optional[int] = ..., t: _Optional[float] = ..., hits: _Optional[_Iterable[_Union[Hit, _Mapping]]] = ...) -> None: ...

class DirectionExample(_message.Message):
    __slots__ = ("text", "image", "asset_id")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    text: str
    image: bytes
    asset_id: int
    def __init__(self, text: _Optional[str] = ..., image: _Optional[bytes] = ..., asset_id: _Optional[int] = ...) -> None: ...

class CreateDirectionRequest(_message.Message):
    __slots__ = ("collection", "name", "positive", "negative", "orthogonal_to")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    ORTHOGONAL_TO_FIELD_NUMBER: _ClassVar[int]
    collection: str
    name: str
    positive: _containers.RepeatedCompositeFieldContainer[DirectionExample]
    negative: _containers.RepeatedCompositeFieldContainer[DirectionExample]
    orthogonal_to: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collection: _Optional[str] = ..., name: _Optional[str] = ..., positive: _Optional[_Iterable[_Union[DirectionExample, _Mapping]]] = ..., negative: _Optional[_Iterable[_Union[DirectionExample, _Mapping]]] = ..., orthogonal_to: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateDirectionResponse(_message.Message):
    __slots__ = ("direction",)
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    direction: Direction
    def __init__(self, direction: _Optional[_Union[Direction, _Mapping]] = ...) -> None: ...

class ListDirectionsRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class GetDirectionRequest(_message.Message):
    __slots__ = ("collection", "name")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    collection: str
    name: str
    def __init__(self, collection: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class GetDirectionResponse(_message.Message):
    __slots__ = ("direction",)
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    direction: Direction
    def __init__(self, direction: _Optional[_Union[Direction, _Mapping]] = ...) -> None: ...

class DeleteDirectionRequest(_message.Message):
    __slots__ = ("collection", "name")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    collection: str
    name: str
    def __init__(self, collection: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class DeleteDirectionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Direction(_message.Message):
    __slots__ = ("name", "norm", "positive", "negative", "orthogonal_to", "cosines", "created_at")
    class CosinesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    NORM_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    ORTHOGONAL_TO_FIELD_NUMBER: _ClassVar[int]
    COSINES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    norm: float
    positive: _containers.RepeatedScalarFieldContainer[str]
    negative: _containers.RepeatedScalarFieldContainer[str]
    orthogonal_to: _containers.RepeatedScalarFieldContainer[str]
    cosines: _containers.ScalarMap[str, float]
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., norm: _Optional[float] = ..., positive: _Optional[_Iterable[str]] = ..., negative: _Optional[_Iterable[str]] = ..., orthogonal_to: _Optional[_Iterable[str]] = ..., cosines: _Optional[_Mapping[str, float]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListDirectionsResponse(_message.Message):
    __slots__ = ("directions",)
    DIRECTIONS_FIELD_NUMBER: _ClassVar[int]
    directions: _containers.RepeatedCompositeFieldContainer[Direction]
    def __init__(self, directions: _Optional[_Iterable[_Union[Direction, _Mapping]]] = ...) -> None: ...

class GetAssetRequest(_message.Message):
    __slots__ = ("asset_id",)
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    asset_id: int
    def __init__(self, asset_id: _Optional[int] = ...) -> None: ...

class GetAssetResponse(_message.Message):
    __slots__ = ("asset",)
    ASSET_FIELD_NUMBER: _ClassVar[int]
    asset: Asset
    def __init__(self, asset: _Optional[_Union[Asset, _Mapping]] = ...) -> None: ...

class Asset(_message.Message):
    __slots__ = ("id", "collection", "uri", "content_hash", "media_type", "size_bytes", "mtime", "width", "height", "state", "error", "metadata", "created_at", "updated_at")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Asset.State]
        STATE_INDEXED: _ClassVar[Asset.State]
        STATE_FAILED: _ClassVar[Asset.State]
        STATE_DELETED: _ClassVar[Asset.State]
    STATE_UNSPECIFIED: Asset.State
    STATE_INDEXED: Asset.State
    STATE_FAILED: Asset.State
    STATE_DELETED: Asset.State
    ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MTIME_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    collection: str
    uri: str
    content_hash: str
    media_type: str
    size_bytes: int
    mtime: _timestamp_pb2.Timestamp
    width: int
    height: int
    state: Asset.State
    error: str
    metadata: _struct_pb2.Struct
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., collection: _Optional[str] = ..., uri: _Optional[str] = ..., content_hash: _Optional[str] = ..., media_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., mtime: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., state: _Optional[_Union[Asset.State, str]] = ..., error: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListCollectionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Collection(_message.Message):
    __slots__ = ("name", "model_spec", "dim", "metric", "indexed", "failed", "deleted", "index_size", "index_seq", "index_type", "index_params", "index_bytes_per_vector", "head_seq")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_SPEC_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    INDEXED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    INDEX_SIZE_FIELD_NUMBER: _ClassVar[int]
    INDEX_SEQ_FIELD_NUMBER: _ClassVar[int]
    INDEX_TYPE_FIELD_NUMBER: _ClassVar[int]
    INDEX_PARAMS_FIELD_NUMBER: _ClassVar[int]
    INDEX_BYTES_PER_VECTOR_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQ_FIELD_NUMBER: _ClassVar[int]
    name: str
    model_spec: str
    dim: int
    metric: str
    indexed: int
    failed: int
    deleted: int
    index_size: int
    index_seq: int
    index_type: str
    index_params: str
    index_bytes_per_vector: float
    head_seq: int
    def __init__(self, name: _Optional[str] = ..., model_spec: _Optional[str] = ..., dim: _Optional[int] = ..., metric: _Optional[str] = ..., indexed: _Optional[int] = ..., failed: _Optional[int] = ..., deleted: _Optional[int] = ..., index_size: _Optional[int] = ..., index_seq: _Optional[int] = ..., index_type: _Optional[str] = ..., index_params: _Optional[str] = ..., index_bytes_per_vector: _Optional[float] = ..., head_seq: _Optional[int] = ...) -> None: ...

class ListCollectionsResponse(_message.Message):
    __slots__ = ("collections",)
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[Collection]
    def __init__(self, collections: _Optional[_Iterable[_Union[Collection, _Mapping]]] = ...) -> None: ...

class ProjectRequest(_message.Message):
    __slots__ = ("collection", "method", "max_points", "color_by", "path_source", "path_target", "path_steps")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    COLOR_BY_FIELD_NUMBER: _ClassVar[int]
    PATH_SOURCE_FIELD_NUMBER: _ClassVar[int]
    PATH_TARGET_FIELD_NUMBER: _ClassVar[int]
    PATH_STEPS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    method: str
    max_points: int
    color_by: str
    path_source: Query
    path_target: Query
    path_steps: int
    def __init__(self, collection: _Optional[str] = ..., method: _Optional[str] = ..., max_points: _Optional[int] = ..., color_by: _Optional[str] = ..., path_source: _Optional[_Union[Query, _Mapping]] = ..., path_target: _Optional[_Union[Query, _Mapping]] = ..., path_steps: _Optional[int] = ...) -> None: ...

class ProjectedPoint(_message.Message):
    __slots__ = ("asset_id", "uri", "x", "y", "color")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    asset_id: int
    uri: str
    x: float
    y: float
    color: str
    def __init__(self, asset_id: _Optional[int] = ..., uri: _Optional[str] = ..., x: _Optional[float] = ..., y: _Optional[float] = ..., color: _Optional[str] = ...) -> None: ...

class PathPoint(_message.Message):
    __slots__ = ("step", "t", "x", "y", "nearest_asset_id")
    STEP_FIELD_NUMBER: _ClassVar[int]
    T_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    NEAREST_ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    step: int
    t: float
    x: float
    y: float
    nearest_asset_id: int
    def __init__(self, step: _Optional[int] = ..., t: _Optional[float] = ..., x: _Optional[float] = ..., y: _Optional[float] = ..., nearest_asset_id: _Optional[int] = ...) -> None: ...

class ProjectResponse(_message.Message):
    __slots__ = ("method", "points", "path", "total")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    method: str
    points: _containers.RepeatedCompositeFieldContainer[ProjectedPoint]
    path: _containers.RepeatedCompositeFieldContainer[PathPoint]
    total: int
    def __init__(self, method: _Optional[str] = ..., points: _Optional[_Iterable[_Union[ProjectedPoint, _Mapping]]] = ..., path: _Optional[_Iterable[_Union[PathPoint, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class VariationsRequest(_message.Message):
    __slots__ = ("collection", "seed", "radius", "min_distance", "n", "diversity")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    RADIUS_FIELD_NUMBER: _ClassVar[int]
    MIN_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    DIVERSITY_FIELD_NUMBER: _ClassVar[int]
    collection: str
    seed: Query
    radius: float
    min_distance: float
    n: int
    diversity: float
    def __init__(self, collection: _Optional[str] = ..., seed: _Optional[_Union[Query, _Mapping]] = ..., radius: _Optional[float] = ..., min_distance: _Optional[float] = ..., n: _Optional[int] = ..., diversity: _Optional[float] = ...) -> None: ...

class VariationsResponse(_message.Message):
    __slots__ = ("hits", "collection", "radius", "min_distance", "in_band", "index_seq", "index_size", "took_ms")
    HITS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    RADIUS_FIELD_NUMBER: _ClassVar[int]
    MIN_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    IN_BAND_FIELD_NUMBER: _ClassVar[int]
    INDEX_SEQ_FIELD_NUMBER: _ClassVar[int]
    INDEX_SIZE_FIELD_NUMBER: _ClassVar[int]
    TOOK_MS_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[Hit]
    collection: str
    radius: float
    min_distance: float
    in_band: int
    index_seq: int
    index_size: int
    took_ms: float
    def __init__(self, hits: _Optional[_Iterable[_Union[Hit, _Mapping]]] = ..., collection: _Optional[str] = ..., radius: _Optional[float] = ..., min_distance: _Optional[float] = ..., in_band: _Optional[int] = ..., index_seq: _Optional[int] = ..., index_size: _Optional[int] = ..., took_ms: _Optional[float] = ...) -> None: ...

class Filter(_message.Message):
    __slots__ = ("media_types", "uri_prefix", "path_prefix", "mtime", "created", "updated", "size", "metadata")
    MEDIA_TYPES_FIELD_NUMBER: _ClassVar[int]
    URI_PREFIX_FIELD_NUMBER: _ClassVar[int]
    PATH_PREFIX_FIELD_NUMBER: _ClassVar[int]
    MTIME_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    media_types: _containers.RepeatedScalarFieldContainer[str]
    uri_prefix: str
    path_prefix: str
    mtime: TimeRange
    created: TimeRange
    updated: TimeRange
    size: SizeRange
    metadata: _containers.RepeatedCompositeFieldContainer[MetadataCondition]
    def __init__(self, media_types: _Optional[_Iterable[str]] = ..., uri_prefix: _Optional[str] = ..., path_prefix: _Optional[str] = ..., mtime: _Optional[_Union[TimeRange, _Mapping]] = ..., created: _Optional[_Union[TimeRange, _Mapping]] = ..., updated: _Optional[_Union[TimeRange, _Mapping]] = ..., size: _Optional[_Union[SizeRange, _Mapping]] = ..., metadata: _Optional[_Iterable[_Union[MetadataCondition, _Mapping]]] = ...) -> None: ...

class TimeRange(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SizeRange(_message.Message):
    __slots__ = ("min", "max")
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    min: int
    max: int
    def __init__(self, min: _Optional[int] = ..., max: _Optional[int] = ...) -> None: ...

class MetadataValue(_message.Message):
    __slots__ = ("text", "number", "flag")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    text: str
    number: float
    flag: bool
    def __init__(self, text: _Optional[str] = ..., number: _Optional[float] = ..., flag: _Optional[bool] = ...) -> None: ...

class MetadataCondition(_message.Message):
    __slots__ = ("key", "op", "values")
    class Op(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OP_UNSPECIFIED: _ClassVar[MetadataCondition.Op]
        OP_EQUALS: _ClassVar[MetadataCondition.Op]
        OP_NOT_EQUALS: _ClassVar[MetadataCondition.Op]
        OP_IN: _ClassVar[MetadataCondition.Op]
        OP_NOT_IN: _ClassVar[MetadataCondition.Op]
        OP_EXISTS: _ClassVar[MetadataCondition.Op]
        OP_NOT_EXISTS: _ClassVar[MetadataCondition.Op]
    OP_UNSPECIFIED: MetadataCondition.Op
    OP_EQUALS: MetadataCondition.Op
    OP_NOT_EQUALS: MetadataCondition.Op
    OP_IN: MetadataCondition.Op
    OP_NOT_IN: MetadataCondition.Op
    OP_EXISTS: MetadataCondition.Op
    OP_NOT_EXISTS: MetadataCondition.Op
    KEY_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    key: str
    op: MetadataCondition.Op
    values: _containers.RepeatedCompositeFieldContainer[MetadataValue]
    def __init__(self, key: _Optional[str] = ..., op: _Optional[_Union[MetadataCondition.Op, str]] = ..., values: _Optional[_Iterable[_Union[MetadataValue, _Mapping]]] = ...) -> None: ...

class ImportVectorsRequest(_message.Message):
    __slots__ = ("collection", "model_spec", "ids", "dim", "vectors", "metadata")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_SPEC_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    collection: str
    model_spec: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    dim: int
    vectors: bytes
    metadata: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    def __init__(self, collection: _Optional[str] = ..., model_spec: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., dim: _Optional[int] = ..., vectors: _Optional[bytes] = ..., metadata: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ...) -> None: ...

class ImportVectorsResponse(_message.Message):
    __slots__ = ("collection", "added", "replaced", "model_spec", "dim")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    REPLACED_FIELD_NUMBER: _ClassVar[int]
    MODEL_SPEC_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    collection: str
    added: int
    replaced: int
    model_spec: str
    dim: int
    def __init__(self, collection: _Optional[str] = ..., added: _Optional[int] = ..., replaced: _Optional[int] = ..., model_spec: _Optional[str] = ..., dim: _Optional[int] = ...) -> None: ...

class UpsertAssetRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: UpsertAssetHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[UpsertAssetHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class UpsertAssetHeader(_message.Message):
    __slots__ = ("collection", "uri", "metadata", "size_bytes")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    collection: str
    uri: str
    metadata: _struct_pb2.Struct
    size_bytes: int
    def __init__(self, collection: _Optional[str] = ..., uri: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class UpsertAssetResponse(_message.Message):
    __slots__ = ("asset", "created")
    ASSET_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    asset: Asset
    created: bool
    def __init__(self, asset: _Optional[_Union[Asset, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class DeleteAssetRequest(_message.Message):
    __slots__ = ("asset_id", "uri", "collection")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    asset_id: int
    uri: str
    collection: str
    def __init__(self, asset_id: _Optional[int] = ..., uri: _Optional[str] = ..., collection: _Optional[str] = ...) -> None: ...

class DeleteAssetResponse(_message.Message):
    __slots__ = ("asset_id",)
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    asset_id: int
    def __init__(self, asset_id: _Optional[int] = ...) -> None: ...

class UpdateMetadataRequest(_message.Message):
    __slots__ = ("asset_id", "uri", "collection", "metadata", "merge")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    MERGE_FIELD_NUMBER: _ClassVar[int]
    asset_id: int
    uri: str
    collection: str
    metadata: _struct_pb2.Struct
    merge: bool
    def __init__(self, asset_id: _Optional[int] = ..., uri: _Optional[str] = ..., collection: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., merge: _Optional[bool] = ...) -> None: ...

class UpdateMetadataResponse(_message.Message):
    __slots__ = ("asset",)
    ASSET_FIELD_NUMBER: _ClassVar[int]
    asset: Asset
    def __init__(self, asset: _Optional[_Union[Asset, _Mapping]] = ...) -> None: ...

class CreateCollectionRequest(_message.Message):
    __slots__ = ("name", "model_spec")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_SPEC_FIELD_NUMBER: _ClassVar[int]
    name: str
    model_spec: str
    def __init__(self, name: _Optional[str] = ..., model_spec: _Optional[str] = ...) -> None: ...

class CreateCollectionResponse(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: Collection
    def __init__(self, collection: _Optional[_Union[Collection, _Mapping]] = ...) -> None: ...

class DeleteCollectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteCollectionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IndexJob(_message.Message):
    __slots__ = ("id", "collection", "paths", "state", "files_total", "files_done", "indexed", "unchanged", "failed", "deleted", "current_file", "files_per_second", "eta_seconds", "error", "retry_failed", "created_at", "started_at", "finished_at")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[IndexJob.State]
        STATE_QUEUED: _ClassVar[IndexJob.State]
        STATE_RUNNING: _ClassVar[IndexJob.State]
        STATE_SUCCEEDED: _ClassVar[IndexJob.State]
        STATE_FAILED: _ClassVar[IndexJob.State]
        STATE_CANCELLED: _ClassVar[IndexJob.State]
        STATE_INTERRUPTED: _ClassVar[IndexJob.State]
    STATE_UNSPECIFIED: IndexJob.State
    STATE_QUEUED: IndexJob.State
    STATE_RUNNING: IndexJob.State
    STATE_SUCCEEDED: IndexJob.State
    STATE_FAILED: IndexJob.State
    STATE_CANCELLED: IndexJob.State
    STATE_INTERRUPTED: IndexJob.State
    ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FILES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    FILES_DONE_FIELD_NUMBER: _ClassVar[int]
    INDEXED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FILE_FIELD_NUMBER: _ClassVar[int]
    FILES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RETRY_FAILED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    collection: str
    paths: _containers.RepeatedScalarFieldContainer[str]
    state: IndexJob.State
    files_total: int
    files_done: int
    indexed: int
    unchanged: int
    failed: int
    deleted: int
    current_file: str
    files_per_second: float
    eta_seconds: float
    error: str
    retry_failed: bool
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., collection: _Optional[str] = ..., paths: _Optional[_Iterable[str]] = ..., state: _Optional[_Union[IndexJob.State, str]] = ..., files_total: _Optional[int] = ..., files_done: _Optional[int] = ..., indexed: _Optional[int] = ..., unchanged: _Optional[int] = ..., failed: _Optional[int] = ..., deleted: _Optional[int] = ..., current_file: _Optional[str] = ..., files_per_second: _Optional[float] = ..., eta_seconds: _Optional[float] = ..., error: _Optional[str] = ..., retry_failed: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StartIndexJobRequest(_message.Message):
    __slots__ = ("collection", "paths", "retry_failed")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    RETRY_FAILED_FIELD_NUMBER: _ClassVar[int]
    collection: str
    paths: _containers.RepeatedScalarFieldContainer[str]
    retry_failed: bool
    def __init__(self, collection: _Optional[str] = ..., paths: _Optional[_Iterable[str]] = ..., retry_failed: _Optional[bool] = ...) -> None: ...

class StartIndexJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: IndexJob
    def __init__(self, job: _Optional[_Union[IndexJob, _Mapping]] = ...) -> None: ...

class WatchIndexJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class WatchIndexJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: IndexJob
    def __init__(self, job: _Optional[_Union[IndexJob, _Mapping]] = ...) -> None: ...

class CancelIndexJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class CancelIndexJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: IndexJob
    def __init__(self, job: _Optional[_Union[IndexJob, _Mapping]] = ...) -> None: ...

class ResumeIndexJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class ResumeIndexJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: IndexJob
    def __init__(self, job: _Optional[_Union[IndexJob, _Mapping]] = ...) -> None: ...

class ListIndexJobsRequest(_message.Message):
    __slots__ = ("collection", "limit")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    limit: int
    def __init__(self, collection: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListIndexJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[IndexJob]
    def __init__(self, jobs: _Optional[_Iterable[_Union[IndexJob, _Mapping]]] = ...) -> None: ...
