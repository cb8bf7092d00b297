"""Deadlines and cancellation: work of a call stops once its client is gone or out of time."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from latent.errors import Cancelled, DeadlineExceeded

DEADLINE_SLACK = 0.05  # seconds: the core's clock and Python's may disagree this much

Check = Callable[[], None]
"""Raises when the call it belongs to should stop; called between expensive steps."""


def stop_if_done(context: grpc.ServicerContext) -> None:
    """Stop the call's work when its deadline passed or its client cancelled it.

    Raises:
        DeadlineExceeded: the call's deadline has passed.
        Cancelled: the client cancelled the call (or went away).
    """
    if context.is_active():
        return
    remaining = context.time_remaining()
    if remaining is not None and remaining <= DEADLINE_SLACK:
        raise DeadlineExceeded("the call's deadline passed; the server stopped its work")
    raise Cancelled("the client cancelled the call; the server stopped its work")


def checker(context: grpc.ServicerContext) -> Check:
    """A ``Check`` for one call's context."""
    return lambda: stop_if_done(context)


def no_check() -> None:
    """A ``Check`` that never stops (work outside a call)."""
