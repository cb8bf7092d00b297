"""The one error tree of assetsearch; each class maps to exactly one gRPC status.

    AssetSearchError                 INTERNAL (and any status not listed below)
    ├── InvalidArgument              INVALID_ARGUMENT
    │   └── DimensionMismatch        INVALID_ARGUMENT
    ├── NotFound                     NOT_FOUND
    ├── AlreadyExists                ALREADY_EXISTS
    ├── FailedPrecondition           FAILED_PRECONDITION
    │   └── ModelUnavailable         FAILED_PRECONDITION
    ├── Unauthenticated              UNAUTHENTICATED
    ├── PermissionDenied             PERMISSION_DENIED
    ├── ResourceExhausted            RESOURCE_EXHAUSTED
    ├── DeadlineExceeded             DEADLINE_EXCEEDED
    ├── Cancelled                    CANCELLED
    └── Unavailable                  UNAVAILABLE

The server raises these and its one interceptor turns them into statuses; the client
turns every status back into the class of its code (``from_rpc_error``), so a caller
catches ``NotFound``, never ``grpc.RpcError``.
"""

from __future__ import annotations

import grpc


class AssetSearchError(Exception):
    """Base of every error assetsearch raises on purpose."""

    status: grpc.StatusCode = grpc.StatusCode.INTERNAL
    from_server: bool = False
    """True when a server refused the call (the client raised it from the call's status)."""


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


class Unauthenticated(AssetSearchError):
    """No credentials, or credentials the server does not know."""

    status = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(AssetSearchError):
    """The credentials do not allow this call."""

    status = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(AssetSearchError):
    """A limit was reached (calls in flight, message size)."""

    status = grpc.StatusCode.RESOURCE_EXHAUSTED


class DeadlineExceeded(AssetSearchError):
    """The call's deadline passed before it finished."""

    status = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(AssetSearchError):
    """The call was cancelled."""

    status = grpc.StatusCode.CANCELLED


class Unavailable(AssetSearchError):
    """The service cannot answer right now (not reachable, or an index still loading)."""

    status = grpc.StatusCode.UNAVAILABLE


_BY_STATUS: dict[grpc.StatusCode, type[AssetSearchError]] = {
    cls.status: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        Unauthenticated,
        PermissionDenied,
        ResourceExhausted,
        DeadlineExceeded,
        Cancelled,
        Unavailable,
    )
}


def from_rpc_error(error: grpc.RpcError) -> AssetSearchError:
    """The error of our tree that a failed call's status stands for.

    The message is the server's own (the status details); the status code stays
    readable as ``status`` on the instance.
    """
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    out = _BY_STATUS.get(code, AssetSearchError)(details or code.name)
    out.status = code
    out.from_server = True
    return out
