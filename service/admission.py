"""Admission control: at most ``max_in_flight`` calls at once; one more is refused at once.

A call beyond the limit gets RESOURCE_EXHAUSTED straight away instead of waiting in a
queue without bound, so a client can back off or try another replica. A stream counts
from its start until its last message is sent. Health checks are exempt (probes must
answer while the server is busy). gRPC runs every call on a worker thread of its pool,
and a call waiting for a thread is queued before any interceptor sees it, so the pool
is sized above the limit (``worker_count``): the spare threads answer health checks and
refusals.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import grpc

from service.handlers import Unwatched, Watch, service_name, wrap_handler
from service.limits import env_name

if TYPE_CHECKING:
    from latent.settings import Settings

SPARE_WORKERS = 8  # threads beyond the limit: health checks and refusals never queue
EXEMPT_SERVICES = frozenset({"grpc.health.v1.Health"})


def worker_count(settings: Settings) -> int:
    """Threads of the server's pool: the in-flight limit plus spares."""
    return settings.max_in_flight + SPARE_WORKERS


class Admission:
    """Counts the calls in flight against a limit; thread-safe.

    ``drain`` starts a shutdown: from then on every call is refused with UNAVAILABLE
    (a client retries another replica) while those in flight finish (``wait_idle``).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self.refused = 0  # calls refused for the limit since start
        self.draining = False
        self._idle = threading.Condition()

    def try_enter(self) -> grpc.StatusCode | None:
        """Take a slot; returns None, or the status of the refusal.

        RESOURCE_EXHAUSTED (one more refusal counted) when every slot is taken,
        UNAVAILABLE while the server drains.
        """
        with self._idle:
            if self.draining:
                return grpc.StatusCode.UNAVAILABLE
            if self.in_flight >= self.limit:
                self.refused += 1
                return grpc.StatusCode.RESOURCE_EXHAUSTED
            self.in_flight += 1
            return None

    def leave(self) -> None:
        """Give a slot back."""
        with self._idle:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.notify_all()

    def drain(self) -> None:
        """Refuse every call from now on (UNAVAILABLE); those in flight go on."""
        with self._idle:
            self.draining = True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no call is in flight, at most ``timeout`` seconds; True when none is."""
        with self._idle:
            return self._idle.wait_for(lambda: self.in_flight == 0, timeout=max(timeout, 0.0))

    @contextmanager
    def slot(self, context: grpc.ServicerContext) -> Iterator[Watch]:
        """Hold a slot for one call, or abort it: RESOURCE_EXHAUSTED when there is none,
        UNAVAILABLE while the server shuts down."""
        refused = self.try_enter()
        if refused is grpc.StatusCode.UNAVAILABLE:
            context.abort(
                refused,
                "the server is shutting down; retry on another replica or after its restart",
            )
        elif refused is not None:
            context.abort(
                refused,
                f"server busy: {self.limit} calls in flight ({env_name('max_in_flight')}); "
                "retry later or on another replica",
            )
        try:
            yield Unwatched()
        finally:
            self.leave()


class AdmissionInterceptor(grpc.ServerInterceptor):
    """Refuses a call with RESOURCE_EXHAUSTED when ``admission``'s slots are all taken."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = continuation(handler_call_details)
        if handler is None or service_name(handler_call_details.method) in EXEMPT_SERVICES:
            return handler
        return wrap_handler(handler, self.admission.slot)
