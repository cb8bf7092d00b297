"""Every request limit is a setting, and a refusal names the limit and its setting.

Through the real server and the light client: top_k, terms per query, expression length,
steps of a walk, rows of an import batch (INVALID_ARGUMENT), and message size (refused
by gRPC itself with RESOURCE_EXHAUSTED before any of our code runs).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from assetsearch_client import InvalidArgument, ResourceExhausted, SearchClient
from assetsearch_client import terms as t
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb
from assetsearch_client._pb.assetsearch.v1 import search_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from latent.errors import Cancelled, DeadlineExceeded
from latent.query.terms import Text
from latent.settings import Settings
from service import moves
from service.engine import QueryEngine
from tests.conftest import draw_image, write_library
from tests.running import index_into, running_server, wait_for

LIMITS = dict(
    max_top_k=6,
    max_terms=3,
    max_expression_chars=40,
    max_steps=7,
    max_import_rows=5,
    max_message_bytes=64 * 1024,
)


@pytest.fixture
def limited(settings: Settings, encoder, tmp_path: Path) -> Iterator[SearchClient]:
    """A client of a server with small limits, over 8 indexed images."""
    write_library(tmp_path / "lib", 8)
    configured = settings.model_copy(update=LIMITS)
    with running_server(configured, encoder) as server:
        index_into(server, encoder, tmp_path / "lib")
        with SearchClient(f"127.0.0.1:{server.port}") as client:
            yield client


def test_top_k_above_the_setting_is_refused_with_its_name(limited: SearchClient) -> None:
    assert len(limited.search(text="x", top_k=6).hits) == 6
    with pytest.raises(InvalidArgument) as caught:
        limited.search(text="x", top_k=7)
    assert str(caught.value) == "top_k must be between 1 and 6 (ASSETSEARCH_MAX_TOP_K), got 7"
    with pytest.raises(InvalidArgument, match="ASSETSEARCH_MAX_TOP_K"):
        list(limited.interpolate('"a"', '"b"', steps=2, top_k=7))
    assert len(limited.search(text="x", top_k=0).hits) == 6  # the default 10, capped


def test_terms_and_expression_length_are_limited_by_settings(limited: SearchClient) -> None:
    three = [t.Text("red"), t.Text("blue", 0.5), t.Text("green", -0.5)]
    assert limited.search(terms=three, top_k=2).hits
    with pytest.raises(InvalidArgument) as caught:
        limited.search(terms=[*three, t.Text("grey")], top_k=1)
    assert str(caught.value) == "at most 3 terms in query (ASSETSEARCH_MAX_TERMS), got 4"
    with pytest.raises(InvalidArgument, match=r"at most 3 terms in source \(ASSETSEARCH_MAX_TERMS"):
        list(limited.interpolate('"a" + "b" + "c" + "d"', '"e"', steps=2, top_k=1))
    assert limited.search(expression='"a" + "b" - "c"', top_k=1).hits
    long = '"' + "x" * 39 + '"'  # 41 characters
    with pytest.raises(InvalidArgument) as caught:
        limited.search(expression=long, top_k=1)
    assert str(caught.value) == (
        "at most 40 characters in query's expression (ASSETSEARCH_MAX_EXPRESSION_CHARS), got 41"
    )


def test_steps_of_a_walk_are_limited_by_the_setting(limited: SearchClient) -> None:
    assert len(list(limited.interpolate('"red"', '"blue"', steps=7, top_k=1))) == 7
    with pytest.raises(InvalidArgument) as caught:
        list(limited.interpolate('"red"', '"blue"', steps=8, top_k=1))
    assert str(caught.value) == "steps must be between 2 and 7 (ASSETSEARCH_MAX_STEPS), got 8"
    with pytest.raises(InvalidArgument, match=r"between 1 and 7 \(ASSETSEARCH_MAX_STEPS\), got 9"):
        list(limited.traverse('"red"', texts=("red", "blue"), steps=9, top_k=1))


def test_import_batch_rows_are_limited_and_a_refused_batch_writes_nothing(
    limited: SearchClient,
) -> None:
    vectors = np.random.default_rng(0).normal(size=(6, 8)).astype(np.float32)
    ids = [f"v{i}" for i in range(6)]
    with pytest.raises(InvalidArgument) as caught:
        limited.import_vectors(ids, vectors, collection="imported", model_spec="ext:8")
    assert str(caught.value) == (
        "at most 5 rows in one ImportVectors batch (ASSETSEARCH_MAX_IMPORT_ROWS), got 6"
    )
    assert "imported" not in {c.name for c in limited.list_collections()}
    done = limited.import_vectors(
        ids, vectors, collection="imported", model_spec="ext:8", batch_size=5
    )
    assert done.added == 6


def test_a_message_above_the_size_limit_is_refused_by_grpc(limited: SearchClient) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    from io import BytesIO

    from PIL import Image

    big = BytesIO()
    Image.fromarray(noise).save(big, format="PNG")  # ~120 KB: above the 64 KiB limit
    assert len(big.getvalue()) > 64 * 1024
    with pytest.raises(ResourceExhausted) as caught:
        limited.search(image=big.getvalue(), top_k=1)
    assert "larger than max" in str(caught.value), str(caught.value)
    small = BytesIO()
    draw_image(3).save(small, format="PNG")
    assert limited.search(image=small.getvalue(), top_k=1).hits  # the server still serves


@pytest.fixture
def busy_server(settings: Settings, encoder, tmp_path: Path) -> Iterator[Any]:
    """A server that admits two calls at once, over 8 indexed images; walks may be long."""
    write_library(tmp_path / "lib", 8)
    configured = settings.model_copy(update={"max_in_flight": 2, "max_steps": 20_000})
    with running_server(configured, encoder) as server:
        index_into(server, encoder, tmp_path / "lib")
        yield server


def _long_walk(stub: pb_grpc.SearchServiceStub, timeout: float | None = None) -> Any:
    """An Interpolate stream of 20,000 steps; a client that reads slowly holds it open."""
    request = pb.InterpolateRequest(
        source=pb.Query(expression='"red"'),
        target=pb.Query(expression='"blue"'),
        steps=20_000,
        top_k=8,
    )
    return stub.Interpolate(request, timeout=timeout)


def _calls(server: Any, method: str, code: str) -> float | None:
    labels = {"method": f"/assetsearch.v1.SearchService/{method}", "code": code}
    return server.metrics.registry.get_sample_value("assetsearch_calls_total", labels)


def test_a_call_beyond_max_in_flight_is_refused_at_once(busy_server, encoder) -> None:
    address = f"127.0.0.1:{busy_server.port}"
    channel = grpc.insecure_channel(address)
    stub = pb_grpc.SearchServiceStub(channel)
    walks = [_long_walk(stub), _long_walk(stub)]
    for walk in walks:
        next(walk)  # both are running on the server; neither client reads on
    assert busy_server.admission.in_flight == 2
    with SearchClient(address) as client:
        started = time.monotonic()
        with pytest.raises(ResourceExhausted) as caught:
            client.search(text="red", top_k=1)
        assert time.monotonic() - started < 2.0  # refused, not queued
        assert "server busy: 2 calls in flight (ASSETSEARCH_MAX_IN_FLIGHT)" in str(caught.value)
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING  # probes are exempt
        for walk in walks:
            walk.cancel()
        # 20,000 steps take half a minute or more: the cancelled walks stop on the server.
        wait_for(lambda: busy_server.admission.in_flight == 0, "the walks to stop")
        wait_for(lambda: _calls(busy_server, "Interpolate", "CANCELLED") == 2, "their log")
        assert len(client.search(text="red", top_k=1).hits) == 1  # the fourth call is served
    assert busy_server.admission.refused == 1
    channel.close()


def test_a_stream_past_its_deadline_stops_on_the_server(busy_server) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{busy_server.port}")
    walk = _long_walk(pb_grpc.SearchServiceStub(channel), timeout=1.0)
    next(walk)
    wait_for(lambda: busy_server.admission.in_flight == 0, "the walk to stop", timeout=15)
    wait_for(lambda: _calls(busy_server, "Interpolate", "DEADLINE_EXCEEDED") == 1, "its log")
    with pytest.raises(grpc.RpcError) as caught:
        list(walk)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    channel.close()


def test_work_stops_between_steps_once_its_caller_is_gone(busy_server) -> None:
    server = busy_server
    engine = QueryEngine(server.settings, server.catalog, server.indexes, server.encoders)
    live = engine.live("")
    path = [(i / 9, np.eye(live.collection.dim, dtype=np.float32)[0]) for i in range(10)]
    gone = iter([False, False, False])
    seen = []

    def check() -> None:
        if next(gone, True):
            raise Cancelled("the client cancelled the call")

    with pytest.raises(Cancelled):
        for step in moves.walk(engine, live, path, 2, False, None, check):
            seen.append(step.step)
    assert seen == [0, 1, 2]
    embedded: list[str] = []
    terms: list[Any] = [Text(w) for w in ("red", "green", "blue")]

    def after_one() -> None:
        embedded.append("term")
        if len(embedded) > 1:
            raise DeadlineExceeded("the call's deadline passed")

    with pytest.raises(DeadlineExceeded):
        engine.compose(live, terms, after_one)
    assert len(embedded) == 2  # the second term was never embedded
