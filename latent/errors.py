"""The one error tree of assetsearch, defined once in the client and shared by the server.

The tree (and which gRPC status each class maps to) is drawn in
``assetsearch_client.errors``; the server raises these classes and its single
interceptor turns them into statuses, anything else becoming INTERNAL with a short
message and a logged traceback.
"""

from assetsearch_client.errors import (
    AlreadyExists,
    AssetSearchError,
    Cancelled,
    DeadlineExceeded,
    DimensionMismatch,
    FailedPrecondition,
    InvalidArgument,
    ModelUnavailable,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "AlreadyExists",
    "AssetSearchError",
    "Cancelled",
    "DeadlineExceeded",
    "DimensionMismatch",
    "FailedPrecondition",
    "InvalidArgument",
    "ModelUnavailable",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
]
