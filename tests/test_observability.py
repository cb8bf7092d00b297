"""Request ids, one structured log line per call, and Prometheus metrics over HTTP.

Through the real server: the id a caller sends (or a new one) comes back in trailing
metadata on success and on error and is in the call's JSON log line; /metrics, scraped
over HTTP, shows calls by method and code, latency, in-flight and refused calls, each
collection's index size, seq and change-log lag, encoder batches and running jobs.
"""

from __future__ import annotations

import io
import json
import logging
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from assetsearch_client import InvalidArgument, SearchClient
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb
from assetsearch_client._pb.assetsearch.v1 import search_pb2_grpc as pb_grpc
from prometheus_client.parser import text_string_to_metric_families

from latent.catalog.jobs import JobProgress
from latent.settings import Settings
from service.logs import JsonFormatter, RequestIdFilter, configure_logging
from tests.conftest import write_library
from tests.running import index_into, running_server

SEARCH = "/assetsearch.v1.SearchService/Search"


class Lines(logging.Handler):
    """Collects the JSON lines the server logs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.addFilter(RequestIdFilter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def call_log() -> Iterator[Lines]:
    """The call log lines of ``service.observe`` while the test runs."""
    handler, logger = Lines(), logging.getLogger("service.observe")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def observed(settings: Settings, encoder, tmp_path: Path) -> Iterator[Any]:
    """A server with /metrics on a free port over 8 images; it tails only when told."""
    write_library(tmp_path / "lib", 8)
    configured = settings.model_copy(update={"metrics_port": 0, "poll_interval": 3600.0})
    with running_server(configured, encoder) as server:
        index_into(server, encoder, tmp_path / "lib")
        yield server


def _trailing_id(call: Any) -> str:
    return dict(call.trailing_metadata())["x-request-id"]


def test_request_id_comes_back_and_is_in_the_json_log_line(observed, call_log: Lines) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{observed.port}")
    stub = pb_grpc.SearchServiceStub(channel)
    request = pb.SearchRequest(query=pb.QueryTerm(text="red"), top_k=3)
    reply, call = stub.Search.with_call(request, metadata=[("x-request-id", "req-17-ok")])
    assert len(reply.hits) == 3 and _trailing_id(call) == "req-17-ok"
    bad = pb.SearchRequest(query=pb.QueryTerm(text="red"), top_k=-1)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Search(bad, metadata=[("x-request-id", "req-17-bad")])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _trailing_id(caught.value) == "req-17-bad"
    _, call = stub.Search.with_call(request)  # no id sent: the server makes one
    made = _trailing_id(call)
    assert len(made) == 32 and made not in ("req-17-ok", "req-17-bad")
    channel.close()
    by_id = {line.get("request_id"): line for line in call_log.lines}
    ok = by_id["req-17-ok"]
    assert ok["level"] == "INFO" and ok["logger"] == "service.observe"
    assert (ok["method"], ok["code"], ok["collection"], ok["hits"]) == (SEARCH, "OK", "default", 3)
    assert ok["ms"] > 0 and ok["ts"].endswith("Z") and SEARCH in ok["msg"]
    assert by_id["req-17-bad"]["code"] == "INVALID_ARGUMENT"
    assert by_id[made]["code"] == "OK"


def _scrape(server: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_are_scraped_over_http(observed, encoder, tmp_path: Path) -> None:
    with SearchClient(f"127.0.0.1:{observed.port}") as client:
        client.search(text="a green square", top_k=2)
        client.search(text="a green square", top_k=2)
        with pytest.raises(InvalidArgument):
            client.search(text="x", top_k=-5)
        client.list_collections()
    m = _scrape(observed)
    assert m[("assetsearch_calls_total", (("code", "OK"), ("method", SEARCH)))] == 2
    assert m[("assetsearch_calls_total", (("code", "INVALID_ARGUMENT"), ("method", SEARCH)))] == 1
    assert m[("assetsearch_call_duration_seconds_count", (("method", SEARCH),))] == 3
    assert m[("assetsearch_call_duration_seconds_sum", (("method", SEARCH),))] > 0
    assert m[("assetsearch_calls_in_flight", ())] == 0
    assert m[("assetsearch_calls_refused_total", ())] == 0
    assert m[("assetsearch_max_in_flight", ())] == observed.settings.max_in_flight
    default = (("collection", "default"),)
    seq = m[("assetsearch_index_seq", default)]
    assert m[("assetsearch_index_size", default)] == 8 and seq > 0
    assert m[("assetsearch_index_lag", default)] == 0
    text_batches = (("kind", "text"), ("model", encoder.spec))
    assert m[("assetsearch_encoder_batch_size_count", text_batches)] >= 1
    assert m[("assetsearch_encoder_batch_seconds_sum", text_batches)] > 0

    # Three more images in the catalog, not yet applied: the lag shows them.
    write_library(tmp_path / "more", 3, start=100)
    from indexer.pipeline import Indexer

    Indexer(observed.catalog, lambda spec: encoder, "default", encoder.spec).run(
        [tmp_path / "more"]
    )
    m = _scrape(observed)
    head = m[("assetsearch_catalog_head_seq", default)]
    assert head >= seq + 3 and m[("assetsearch_index_lag", default)] == head - seq
    observed.indexes.sync()
    m = _scrape(observed)
    assert m[("assetsearch_index_lag", default)] == 0
    assert m[("assetsearch_index_size", default)] == 11


def test_a_running_index_job_shows_its_progress(observed) -> None:
    jobs = observed.catalog.jobs
    collection = observed.catalog.collection("default")
    job = jobs.create_job(collection.id, ["/elsewhere"], False, "replica-b")
    assert jobs.claim_job(job.id, "replica-b") is not None
    assert jobs.update_progress(job.id, "replica-b", JobProgress(files_total=10, files_done=4))
    m = _scrape(observed)
    labels = (("collection", "default"), ("job", str(job.id)))
    assert m[("assetsearch_index_job_files_done", labels)] == 4
    assert m[("assetsearch_index_job_files_total", labels)] == 10


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_configure_logging_writes_one_line_per_record(fmt: str) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    try:
        configure_logging(Settings(log_format=fmt, log_level="warning"), stream)
        logging.getLogger("service.observe").info("dropped: below the level")
        logging.getLogger("service.observe").warning(
            "call done", extra={"call": {"method": SEARCH, "code": "OK", "hits": 2}}
        )
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    (line,) = stream.getvalue().splitlines()
    if fmt == "json":
        record = json.loads(line)
        assert (record["level"], record["msg"], record["method"], record["hits"]) == (
            "WARNING",
            "call done",
            SEARCH,
            2,
        )
    else:
        assert line.endswith(f"WARNING service.observe: call done method={SEARCH} code=OK hits=2")
    with pytest.raises(ValueError, match="unknown level 'LOUD'"):
        configure_logging(Settings(log_level="LOUD"), stream)


def test_status_shows_the_servers_health_and_each_collections_lag(
    observed, encoder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import main
    from indexer.pipeline import Indexer

    write_library(tmp_path / "more", 2, start=200)
    Indexer(observed.catalog, lambda spec: encoder, "default", encoder.spec).run(
        [tmp_path / "more"]
    )
    s = observed.settings
    where = ["--data-dir", str(s.data_dir), "--database-url", s.resolved_database_url()]
    server = ["--server", f"127.0.0.1:{observed.port}"]
    assert main(["status", "--json", *where, *server]) == 0
    served = json.loads(capsys.readouterr().out)["server"]
    assert served["health"] == "SERVING"
    default = served["collections"]["default"]
    assert default["index_size"] == 8 and default["lag"] == 2
    assert default["head_seq"] == default["index_seq"] + 2
    assert main(["status", *where, *server]) == 0
    out = capsys.readouterr().out
    assert f"server 127.0.0.1:{observed.port}: SERVING" in out
    assert "default: index 8 vectors at seq" in out and "lag 2" in out
    observed.indexes.sync()
    assert main(["status", "--json", *where, *server]) == 0
    assert json.loads(capsys.readouterr().out)["server"]["collections"]["default"]["lag"] == 0
    observed.stop(grace=0)  # stopped: no answer, status says so and exits 1
    assert main(["status", *where, *server, "--health-timeout", "1"]) == 1
    assert f"server 127.0.0.1:{observed.port}: UNREACHABLE" in capsys.readouterr().out
