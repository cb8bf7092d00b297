"""The error interceptor: maps the error tree of ``latent.errors`` to gRPC statuses."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc

from latent.errors import AssetSearchError
from service.handlers import Unwatched, Watch, wrap_handler

log = logging.getLogger(__name__)


def _abort(context: grpc.ServicerContext, exc: Exception, method: str) -> None:
    if context.code() is not None:  # the handler already aborted; re-raise that
        raise exc
    if isinstance(exc, AssetSearchError):
        context.abort(exc.status, str(exc))
    log.exception("unexpected error in %s", method)
    context.abort(
        grpc.StatusCode.INTERNAL,
        f"internal error in {method}: {type(exc).__name__}; see server log",
    )


@contextmanager
def _mapped(context: grpc.ServicerContext, method: str) -> Iterator[Watch]:
    try:
        yield Unwatched()
    except Exception as exc:  # noqa: BLE001 - the mapping point for every error
        _abort(context, exc, method)


class ErrorInterceptor(grpc.ServerInterceptor):
    """Turns ``AssetSearchError`` into its status and anything else into a short INTERNAL.

    It wraps every kind of handler (unary or streaming, either way), for the whole call.
    """

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        return wrap_handler(handler, lambda context: _mapped(context, method))
