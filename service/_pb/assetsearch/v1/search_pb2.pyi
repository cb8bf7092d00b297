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
    __slots__ = ("text", "image", "asset_id", "vector", "weight")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    text: str
    image: bytes
    asset_id: int
    vector: Vector
    weight: float
    def __init__(self, text: _Optional[str] = ..., image: _Optional[bytes] = ..., asset_id: _Optional[int] = ..., vector: _Optional[_Union[Vector, _Mapping]] = ..., weight: _Optional[float] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("collection", "query", "top_k", "terms", "expression")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    query: QueryTerm
    top_k: int
    terms: _containers.RepeatedCompositeFieldContainer[QueryTerm]
    expression: str
    def __init__(self, collection: _Optional[str] = ..., query: _Optional[_Union[QueryTerm, _Mapping]] = ..., top_k: _Optional[int] = ..., terms: _Optional[_Iterable[_Union[QueryTerm, _Mapping]]] = ..., expression: _Optional[str] = ...) -> None: ...

class Hit(_message.Message):
    __slots__ = ("asset_id", "uri", "score", "media_type", "width", "height", "segment_start", "segment_end", "metadata")
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_START_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_END_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    asset_id: int
    uri: str
    score: float
    media_type: str
    width: int
    height: int
    segment_start: float
    segment_end: float
    metadata: _struct_pb2.Struct
    def __init__(self, asset_id: _Optional[int] = ..., uri: _Optional[str] = ..., score: _Optional[float] = ..., media_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., segment_start: _Optional[float] = ..., segment_end: _Optional[float] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("hits", "collection", "index_seq", "index_size", "took_ms")
    HITS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    INDEX_SEQ_FIELD_NUMBER: _ClassVar[int]
    INDEX_SIZE_FIELD_NUMBER: _ClassVar[int]
    TOOK_MS_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[Hit]
    collection: str
    index_seq: int
    index_size: int
    took_ms: float
    def __init__(self, hits: _Optional[_Iterable[_Union[Hit, _Mapping]]] = ..., collection: _Optional[str] = ..., index_seq: _Optional[int] = ..., index_size: _Optional[int] = ..., took_ms: _Optional[float] = ...) -> None: ...

class GetAssetRequest(_message.Message):
    __slots__ = ("asset_id",)
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    asset_id: int
    def __init__(self, asset_id: _Optional[int] = ...) -> None: ...

class Asset(_message.Message):
    __slots__ = ("id", "collection", "uri", "content_hash", "media_type", "size_bytes", "mtime", "width", "height", "state", "error", "metadata", "created_at", "updated_at")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Asset.State]
        INDEXED: _ClassVar[Asset.State]
        FAILED: _ClassVar[Asset.State]
        DELETED: _ClassVar[Asset.State]
    STATE_UNSPECIFIED: Asset.State
    INDEXED: Asset.State
    FAILED: Asset.State
    DELETED: Asset.State
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
    __slots__ = ("name", "model_spec", "dim", "metric", "indexed", "failed", "deleted", "index_size", "index_seq")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_SPEC_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    INDEXED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    INDEX_SIZE_FIELD_NUMBER: _ClassVar[int]
    INDEX_SEQ_FIELD_NUMBER: _ClassVar[int]
    name: str
    model_spec: str
    dim: int
    metric: str
    indexed: int
    failed: int
    deleted: int
    index_size: int
    index_seq: int
    def __init__(self, name: _Optional[str] = ..., model_spec: _Optional[str] = ..., dim: _Optional[int] = ..., metric: _Optional[str] = ..., indexed: _Optional[int] = ..., failed: _Optional[int] = ..., deleted: _Optional[int] = ..., index_size: _Optional[int] = ..., index_seq: _Optional[int] = ...) -> None: ...

class ListCollectionsResponse(_message.Message):
    __slots__ = ("collections",)
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[Collection]
    def __init__(self, collections: _Optional[_Iterable[_Union[Collection, _Mapping]]] = ...) -> None: ...
