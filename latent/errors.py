"""The one error tree of assetsearch; each class maps to exactly one gRPC status.

    AssetSearchError                 INTERNAL
    ├── InvalidArgument              INVALID_ARGUMENT
    │   └── DimensionMismatch        INVALID_ARGUMENT
    ├── NotFound                     NOT_FOUND
    ├── AlreadyExists                ALREADY_EXISTS
    ├── FailedPrecondition           FAILED_PRECONDITION
    │   └── ModelUnavailable         FAILED_PRECONDITION
    └── Unavailable                  UNAVAILABLE

The server's single interceptor turns these into statuses; anything else becomes
INTERNAL with a short message and a logged traceback.
"""

from __future__ import annotations

import grpc


class AssetSearchError(Exception):
    """Base of every error assetsearch raises on purpose."""

    status: grpc.StatusCode = grpc.StatusCode.INTERNAL


class InvalidArgument(AssetSearchError):
    """The request is malformed: the caller can fix it."""

    status = grpc.StatusCode.INVALID_ARGUMENT


class DimensionMismatch(InvalidArgument):
    """A vector's dimension differs from the collection's."""


class NotFound(AssetSearchError):
    """An asset, collection or file does not exist."""

    status = grpc.StatusCode.NOT_FOUND


class AlreadyExists(AssetSearchError):
    """Something with that name exists already."""

    status = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(AssetSearchError):
    """The system is not in a state where the request can run."""

    status = grpc.StatusCode.FAILED_PRECONDITION


class ModelUnavailable(FailedPrecondition):
    """A model spec cannot be loaded (missing files, offline hub, bad checksum)."""


class Unavailable(AssetSearchError):
    """The service cannot answer right now (for example the index is being rebuilt)."""

    status = grpc.StatusCode.UNAVAILABLE
