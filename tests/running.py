"""Helpers for tests that start their own server with particular settings."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from indexer.pipeline import Indexer
from latent.catalog import Catalog
from latent.models.encoders import Encoder, EncoderCache
from latent.settings import Settings


def start_server(settings: Settings, encoder: Encoder, host: str = "127.0.0.1") -> Any:
    """A started real server on a free port of ``host``, with the session's model.

    The caller stops it and closes its catalog (``running_server`` does both).
    """
    from service.server import AssetSearchServer

    encoders = EncoderCache()
    encoders.put(encoder)
    server = AssetSearchServer(settings, Catalog(settings.resolved_database_url()), encoders)
    server.start(host=host, port=0)
    return server


@contextmanager
def running_server(settings: Settings, encoder: Encoder) -> Iterator[Any]:
    """A real server on a free loopback port with ``settings`` and the session's model."""
    server = start_server(settings, encoder)
    try:
        yield server
    finally:
        server.stop(grace=0)
        server.catalog.close()


def index_into(server: Any, encoder: Encoder, *paths: Path, collection: str = "default") -> None:
    """Index ``paths`` into the server's catalog and let the server apply them."""
    Indexer(server.catalog, lambda spec: encoder, collection, encoder.spec).run(paths)
    server.indexes.sync()


def wait_for(predicate: Callable[[], Any], what: str = "", timeout: float = 10.0) -> Any:
    """Poll until ``predicate()`` is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.02)
