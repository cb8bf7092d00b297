"""The one server interceptor: maps the error tree of ``latent.errors`` to gRPC statuses."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from latent.errors import AssetSearchError

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


class ErrorInterceptor(grpc.ServerInterceptor):
    """Turns ``AssetSearchError`` into its status and anything else into a short INTERNAL."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if handler.unary_unary:
            inner_uu = handler.unary_unary

            def unary_unary(request: Any, context: grpc.ServicerContext) -> Any:
                try:
                    return inner_uu(request, context)
                except Exception as exc:  # noqa: BLE001 - the mapping point for every error
                    _abort(context, exc, method)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream:
            inner_us = handler.unary_stream

            def unary_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                try:
                    yield from inner_us(request, context)
                except Exception as exc:  # noqa: BLE001
                    _abort(context, exc, method)

            return grpc.unary_stream_rpc_method_handler(
                unary_stream, handler.request_deserializer, handler.response_serializer
            )
        return handler
