"""The light Python client of assetsearch: grpcio and protobuf only.

    from assetsearch_client import SearchClient, terms
    with SearchClient("127.0.0.1:50051") as client:
        for hit in client.search(text="a red circle", top_k=5).hits:
            print(hit.score, hit.uri)

Messages are the generated ``assetsearch_client.pb`` (package ``assetsearch.v1``);
every failed call raises a class of ``assetsearch_client.errors``.
"""

from assetsearch_client import errors, terms
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb
from assetsearch_client.client import SearchClient, Tls
from assetsearch_client.errors import (
    AlreadyExists,
    AssetSearchError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "AlreadyExists",
    "AssetSearchError",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "SearchClient",
    "Tls",
    "Unauthenticated",
    "Unavailable",
    "errors",
    "pb",
    "terms",
]
