"""Wrapping a gRPC method handler of any arity in code that runs around the whole call.

An interceptor that must see a call from its start to its end (a stream included) wraps
the handler with ``wrap_handler``: ``around(context)`` is entered in the call's worker
thread before the handler runs and left when the call is done, and the ``Watch`` it
yields is shown each request and each response on the way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

import grpc


class Watch(Protocol):
    """Sees the messages of one call."""

    def request(self, message: Any) -> None:
        """A request message arrived."""

    def response(self, message: Any) -> None:
        """A response message is about to be sent."""


class Unwatched:
    """A ``Watch`` that looks at nothing."""

    def request(self, message: Any) -> None:
        """Ignore a request."""

    def response(self, message: Any) -> None:
        """Ignore a response."""


Around = Callable[[grpc.ServicerContext], AbstractContextManager[Watch]]


def service_name(method: str) -> str:
    """The service of a full method name: "/pkg.Service/Method" gives "pkg.Service"."""
    return method.split("/")[1] if method.count("/") == 2 else ""


def _relay(responses: Iterator[Any], watch: Watch) -> Iterator[Any]:
    """The handler's responses, shown to ``watch``; closing this closes the handler's."""
    try:
        for response in responses:
            watch.response(response)
            yield response
    finally:
        close = getattr(responses, "close", None)
        if close is not None:
            close()


def _requests(requests: Iterator[Any], watch: Watch) -> Iterator[Any]:
    for message in requests:
        watch.request(message)
        yield message


def wrap_handler(handler: grpc.RpcMethodHandler, around: Around) -> grpc.RpcMethodHandler:
    """The handler with ``around`` entered for the whole of each call.

    Args:
        handler: The handler of one method (any of the four arities).
        around: Makes the context manager of one call; it may abort the call on entry.

    Returns:
        A handler of the same arity and (de)serializers.
    """
    des, ser = handler.request_deserializer, handler.response_serializer
    if handler.unary_unary:
        uu = handler.unary_unary

        def unary_unary(request: Any, context: grpc.ServicerContext) -> Any:
            with around(context) as watch:
                watch.request(request)
                response = uu(request, context)
                watch.response(response)
                return response

        return grpc.unary_unary_rpc_method_handler(unary_unary, des, ser)
    if handler.unary_stream:
        us = handler.unary_stream

        def unary_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with around(context) as watch:
                watch.request(request)
                yield from _relay(us(request, context), watch)

        return grpc.unary_stream_rpc_method_handler(unary_stream, des, ser)
    if handler.stream_unary:
        su = handler.stream_unary

        def stream_unary(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            with around(context) as watch:
                response = su(_requests(requests, watch), context)
                watch.response(response)
                return response

        return grpc.stream_unary_rpc_method_handler(stream_unary, des, ser)
    ss = handler.stream_stream

    def stream_stream(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        with around(context) as watch:
            yield from _relay(ss(_requests(requests, watch), context), watch)

    return grpc.stream_stream_rpc_method_handler(stream_stream, des, ser)
