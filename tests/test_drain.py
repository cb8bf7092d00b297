"""SIGTERM drains a real ``assetsearch serve``: health NOT_SERVING, streams finish, exit 0.

The server process gets SIGTERM while an Interpolate stream is in flight (its client
reads slowly). Health must turn NOT_SERVING at once and new calls get UNAVAILABLE, the
stream must still deliver every step, the process must snapshot its indexes and exit 0,
and its JSON log must hold the stream's line with the request id the client sent.
"""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb
from assetsearch_client._pb.assetsearch.v1 import search_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from indexer.pipeline import Indexer
from latent.catalog import Catalog
from tests.conftest import write_library
from tests.durability import Processes, cli_env
from tests.running import wait_for

STEPS = 3000
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _health(channel: grpc.Channel) -> int | None:
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    except grpc.RpcError:
        return None
    return int(reply.status)


def _manifests(data_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (data_dir / "snapshots").rglob("manifest.json")]


def test_sigterm_drains_a_stream_then_snapshots_and_exits_0(
    database_url: str, tmp_path: Path, encoder
) -> None:
    catalog = Catalog(database_url)
    indexer = Indexer(catalog, lambda spec: encoder, "default", encoder.spec)
    write_library(tmp_path / "lib", 8)
    indexer.run([tmp_path / "lib"])
    env = cli_env(tmp_path / "data", database_url)
    env.update(ASSETSEARCH_MAX_STEPS=str(STEPS), ASSETSEARCH_SHUTDOWN_GRACE="60")
    with Processes(env) as procs:
        server, port = procs.serve()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = pb_grpc.SearchServiceStub(channel)
        wait_for(lambda: _health(channel) == SERVING, "the server to load", timeout=120)
        # Changes the server applies after loading: the snapshot on the way out holds them.
        write_library(tmp_path / "more", 4, start=50)
        indexer.run([tmp_path / "more"])
        listed = pb.ListCollectionsRequest()
        wait_for(lambda: stub.ListCollections(listed).collections[0].index_size == 12, "tail")

        request = pb.InterpolateRequest(
            source=pb.Query(expression='"red"'),
            target=pb.Query(expression='"blue"'),
            steps=STEPS,
            top_k=8,
        )
        stream = stub.Interpolate(request, metadata=[("x-request-id", "drain-17")], timeout=120)
        first = next(stream)  # the stream runs on the server; the client reads on later
        server.terminate()
        wait_for(lambda: _health(channel) == NOT_SERVING, "health to turn NOT_SERVING")
        with pytest.raises(grpc.RpcError) as refused:
            stub.Search(pb.SearchRequest(query=pb.QueryTerm(text="red"), top_k=1), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "shutting down" in refused.value.details()
        steps = [first.step, *(message.step for message in stream)]
        assert steps == list(range(STEPS)), "the stream in flight was cut short"
        assert server.wait() == 0, server.output()
        channel.close()

    head = catalog.head_seq(catalog.collection("default").id)
    (manifest,) = _manifests(tmp_path / "data")
    assert (manifest["seq"], manifest["ntotal"]) == (head, 12)
    calls = [json.loads(line) for line in server.lines if line.startswith("{")]
    (walk,) = [c for c in calls if c.get("request_id") == "drain-17"]
    assert (walk["code"], walk["messages"], walk["hits"]) == ("OK", STEPS, STEPS * 8)
    assert walk["method"] == "/assetsearch.v1.SearchService/Interpolate"
    catalog.close()
