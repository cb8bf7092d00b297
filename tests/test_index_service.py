"""The index layer as users meet it: health while a bad snapshot is rebuilt from SQL, the
served index type in ListCollections, ``collection set-index``, and revision 0003."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from assetsearch_client import AssetSearchError, SearchClient
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import inspect

from latent.catalog import AssetWrite, Catalog, CollectionInfo
from latent.errors import NotFound
from latent.index.live import LiveIndex
from latent.models.encoders import Encoder, EncoderCache
from latent.settings import Settings
from service.server import AssetSearchServer

WAIT = 60.0  # seconds a handshake may take before the test gives up (never a timing check)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _unit(n: int, dim: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _commit(catalog: Catalog, col: CollectionInfo, vectors: np.ndarray, start: int = 0) -> None:
    writes = [
        AssetWrite(f"file:///lib/{start + i}.png", "image", 1, 1, "h", vectors=vectors[i : i + 1])
        for i in range(len(vectors))
    ]
    catalog.commit(col, writes)


class GatedCatalog(Catalog):
    """A real catalog whose full read of a collection's vectors waits for the test."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.reading, self.go_on = threading.Event(), threading.Event()

    def all_vectors(
        self, collection: CollectionInfo, chunk: int = 50_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        self.reading.set()
        assert self.go_on.wait(WAIT)
        yield from super().all_vectors(collection, chunk)


def _health(port: int) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return int(stub.Check(health_pb2.HealthCheckRequest(service="")).status)


def test_a_truncated_snapshot_is_rebuilt_from_sql_while_health_says_not_serving(
    settings: Settings, encoder: Encoder, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = Catalog(settings.resolved_database_url())
    col = catalog.ensure_collection(settings.collection, encoder.spec, encoder.dim)
    vectors = _unit(30, encoder.dim)
    _commit(catalog, col, vectors)
    live = LiveIndex(catalog, col, settings.data_dir / "snapshots")
    live.load()
    snapshot = live.write_snapshot()
    assert snapshot is not None
    snapshot.write_bytes(snapshot.read_bytes()[: snapshot.stat().st_size // 2])
    catalog.close()

    gated = GatedCatalog(settings.resolved_database_url())
    encoders = EncoderCache()
    encoders.put(encoder)
    server = AssetSearchServer(settings, gated, encoders)
    port = server.start(host="127.0.0.1", port=0, wait_ready=False)
    try:
        assert gated.reading.wait(WAIT)  # the bad snapshot was refused: reading SQL now
        assert "checksum does not match" in caplog.text
        assert _health(port) == NOT_SERVING
        with SearchClient(f"127.0.0.1:{port}") as client:
            with pytest.raises(AssetSearchError) as err:
                client.search(vector=vectors[3], top_k=3)
            assert err.value.status == grpc.StatusCode.UNAVAILABLE
            gated.go_on.set()
            deadline = time.monotonic() + WAIT
            while _health(port) != SERVING:
                assert time.monotonic() < deadline, "never became SERVING"
                time.sleep(0.05)
            hits = client.search(vector=vectors[3], top_k=3).hits
            assert hits[0].uri == "file:///lib/3.png"
    finally:
        gated.go_on.set()
        server.stop(grace=0)
        gated.close()


def test_list_collections_reports_the_served_index(
    server: AssetSearchServer, client: SearchClient, encoder: Encoder
) -> None:
    col = server.catalog.ensure_collection("default", encoder.spec, encoder.dim)
    vectors = _unit(17, encoder.dim)
    _commit(server.catalog, col, vectors[:12])
    server.indexes.sync()  # loads the new collection from SQL
    _commit(server.catalog, col, vectors[12:], start=12)
    server.indexes.sync()  # applied as a delta segment on that base
    (listed,) = [c for c in client.list_collections() if c.name == "default"]
    assert listed.index_size == 17
    assert listed.index_type == "flat"
    assert listed.index_params == "pending=5"
    assert listed.index_bytes_per_vector >= 4 * encoder.dim


def test_set_index_cli_stores_the_override(settings: Settings, tmp_path: Path) -> None:
    catalog = Catalog(settings.resolved_database_url())
    catalog.ensure_collection("photos", "spec", 64)
    env = {
        **os.environ,
        "ASSETSEARCH_DATA_DIR": str(settings.data_dir),
        "ASSETSEARCH_DATABASE_URL": settings.resolved_database_url(),
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "cli.main", "collection", "set-index", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)

    done = cli("photos", "--type", "ivf-pq", "--pq-m", "16", "--nprobe", "8")
    assert done.returncode == 0, done.stderr
    assert "ivf-pq(nprobe=8, pq_m=16)" in done.stdout
    photos = catalog.collection("photos")
    assert catalog.index_options(photos.id) == {"kind": "ivf-pq", "nprobe": 8, "pq_m": 16}
    refused = cli("photos", "--type", "hnsw", "--m", "-3")
    assert refused.returncode == 2 and "negative" in refused.stderr
    assert cli("nowhere", "--type", "flat").returncode == 2
    assert cli("photos", "--clear").returncode == 0
    assert catalog.index_options(photos.id) is None
    catalog.close()


def test_revision_0003_keeps_collections_and_assets(database_url: str) -> None:
    cat = Catalog(database_url)
    col = cat.ensure_collection("c", "spec", 4)
    _commit(cat, col, _unit(3, 4))
    cat.set_index_options("c", {"kind": "hnsw"})
    cat.downgrade("0002")
    assert "index_options" not in inspect(cat.engine).get_table_names()
    assert cat.collection("c").counts["indexed"] == 3
    cat.upgrade()
    assert cat.index_options(col.id) is None
    cat.set_index_options("c", {"kind": "ivf-sq8", "nlist": 64})
    assert cat.index_options(col.id) == {"kind": "ivf-sq8", "nlist": 64}
    with pytest.raises(NotFound):
        cat.set_index_options("nope", None)
    cat.close()


class SlowEncoders(EncoderCache):
    """An encoder cache whose model load blocks until the test lets it finish."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.put(encoder)
        self.loading = threading.Event()
        self.go_on = threading.Event()

    def get(self, spec: str) -> Encoder:
        self.loading.set()
        assert self.go_on.wait(WAIT)
        return super().get(spec)


def test_stop_waits_for_a_model_still_loading(settings: Settings, encoder: Encoder) -> None:
    # A process that exits while the loader thread is inside torch aborts (exit 134, no
    # snapshot); SIGTERM during the model load must still end in a clean stop.
    catalog = Catalog(settings.resolved_database_url())
    catalog.ensure_collection("default", encoder.spec, encoder.dim)
    encoders = SlowEncoders(encoder)
    srv = AssetSearchServer(settings, catalog, encoders)
    srv.start(host="127.0.0.1", port=0, wait_ready=False)
    assert encoders.loading.wait(WAIT)
    stopper = threading.Thread(target=srv.stop, kwargs={"grace": 0})
    stopper.start()
    stopper.join(0.5)
    assert stopper.is_alive(), "stop() returned while the model was still loading"
    encoders.go_on.set()
    stopper.join(WAIT)
    assert not stopper.is_alive()
    catalog.close()
