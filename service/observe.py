"""The outermost interceptor: a request id, one log line and the metrics of every call.

The request id is the caller's ``x-request-id`` metadata when it sends a usable one
(at most 128 printable ASCII characters), else a new random one; it goes back in the call's
trailing metadata (``x-request-id``) whether the call succeeds or fails, and every log
line written during the call carries it (``service.logs``). When the call ends, one line
is logged at INFO (health checks at DEBUG) with the method, status code, milliseconds,
request id, peer, the collection the request names (the server's default when it names
its field empty), the hits of the response and, for streams, the messages sent.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import grpc

from service.handlers import service_name, wrap_handler
from service.logs import REQUEST_ID

if TYPE_CHECKING:
    from service.metrics import Metrics

log = logging.getLogger(__name__)

REQUEST_ID_KEY = "x-request-id"
MAX_REQUEST_ID = 128
DEADLINE_SLACK = 0.05  # seconds: the core's clock and Python's may disagree this much
QUIET_SERVICES = frozenset({"grpc.health.v1.Health"})  # probes: logged at DEBUG


def request_id(metadata: Any) -> str:
    """The caller's ``x-request-id`` when it is usable, else a new random id."""
    for key, value in metadata or ():
        if key.lower() != REQUEST_ID_KEY:
            continue
        text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
        text = text.strip()
        if 0 < len(text) <= MAX_REQUEST_ID and text.isascii() and text.isprintable():
            return text
    return uuid.uuid4().hex


def _fields(message: Any) -> Any:
    descriptor = getattr(message, "DESCRIPTOR", None)
    return descriptor.fields_by_name if descriptor is not None else {}


def _collection(message: Any, default: str) -> str | None:
    """The collection a request names: its ``collection`` field, or its header's."""
    fields = _fields(message)
    if "collection" in fields:
        return str(message.collection) or default
    if "header" in fields and message.HasField("header"):
        return _collection(message.header, default)
    return None


def status_of(context: grpc.ServicerContext, error: BaseException | None) -> grpc.StatusCode:
    """The status a call ended with, from its context and what ended the handler."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if not context.is_active():  # the client went away, or the deadline passed
        remaining = context.time_remaining()
        if remaining is not None and remaining <= DEADLINE_SLACK:
            return grpc.StatusCode.DEADLINE_EXCEEDED
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.OK if error is None else grpc.StatusCode.UNKNOWN


class CallRecord:
    """One call from start to end: sets its request id, then logs and counts it."""

    def __init__(
        self,
        method: str,
        rid: str,
        context: grpc.ServicerContext,
        metrics: Metrics | None,
        default_collection: str,
        streaming: bool,
    ) -> None:
        self.method, self.request_id, self.context = method, rid, context
        self.metrics = metrics
        self.default_collection = default_collection
        self.streaming = streaming
        self.collection: str | None = None
        self.hits: int | None = None
        self.messages = 0
        self.started = 0.0
        self._token: Any = None

    def __enter__(self) -> CallRecord:
        self.started = time.perf_counter()
        self._token = REQUEST_ID.set(self.request_id)
        self.context.set_trailing_metadata(((REQUEST_ID_KEY, self.request_id),))
        return self

    def request(self, message: Any) -> None:
        """Note the collection of the call's first request that names one."""
        if self.collection is None:
            self.collection = _collection(message, self.default_collection)

    def response(self, message: Any) -> None:
        """Count a response and its hits."""
        self.messages += 1
        if "hits" in _fields(message):
            self.hits = (self.hits or 0) + len(message.hits)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        seconds = time.perf_counter() - self.started
        code = status_of(self.context, error).name
        try:
            if self.metrics is not None:
                self.metrics.on_call(self.method, code, seconds)
            self._log(code, seconds * 1000)
        finally:
            try:
                REQUEST_ID.reset(self._token)
            except ValueError:  # entered in another context (never expected): leave it
                REQUEST_ID.set(None)

    def _log(self, code: str, ms: float) -> None:
        fields: dict[str, Any] = {
            "method": self.method,
            "code": code,
            "ms": round(ms, 3),
            "peer": self.context.peer(),
        }
        if self.collection is not None:
            fields["collection"] = self.collection
        if self.hits is not None:
            fields["hits"] = self.hits
        if self.streaming:
            fields["messages"] = self.messages
        level = logging.DEBUG if service_name(self.method) in QUIET_SERVICES else logging.INFO
        log.log(level, "%s %s %.1f ms", self.method, code, ms, extra={"call": fields})


class ObserveInterceptor(grpc.ServerInterceptor):
    """Gives every call a request id, one log line and its metrics (the outermost link)."""

    def __init__(self, metrics: Metrics | None, default_collection: str) -> None:
        self.metrics = metrics
        self.default_collection = default_collection

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        rid = request_id(handler_call_details.invocation_metadata)
        streaming = bool(handler.response_streaming)

        def record(context: grpc.ServicerContext) -> CallRecord:
            return CallRecord(
                method, rid, context, self.metrics, self.default_collection, streaming
            )

        return wrap_handler(handler, record)
