"""The vector store at scale: recall, latency beside in-process FAISS, QPS, RSS and start times.

Synthetic clustered 512-d unit vectors are imported straight into a SQLite catalog (the
encoder is out of the way), then the real server is started as a separate process, first
with no snapshot (the index is built from SQL), then again from the snapshot the first
one wrote when it stopped. Against the second one each vector query is timed through
gRPC right beside the same search on the same index loaded in this process, and 8 client
processes measure throughput. Recall@10 is measured against exact search over the
vectors as stored (float16 in SQL).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402 - bench/ is a folder of scripts, not a package

from latent.catalog import Catalog, CollectionInfo  # noqa: E402
from latent.catalog.external import URI_PREFIX  # noqa: E402
from latent.index.live import LiveIndex  # noqa: E402
from latent.settings import Settings  # noqa: E402

SECTION = "Vector store at scale"
COLLECTION = "bench"
MODEL_SPEC = "external:bench-synthetic"  # vectors from elsewhere: no encoder is loaded
IMPORT_CHUNK = 20_000
TOP_K = 10
WARMUP = 20


@dataclass
class Result:
    """Every figure measured at one size."""

    count: int
    import_s: float = 0.0
    start_sql_s: float = 0.0
    start_snapshot_s: float = 0.0
    build_s: float = 0.0
    load_sql_s: float = 0.0
    load_snapshot_s: float = 0.0
    index_kind: str = ""
    rss_per_asset: float = 0.0
    recall_server: float = 0.0
    recall_local: float = 0.0
    qps: float = 0.0
    grpc_ms: list[float] = field(default_factory=list)
    local_ms: list[float] = field(default_factory=list)
    took_ms: list[float] = field(default_factory=list)


# -- data ---------------------------------------------------------------------------------


def clustered(count: int, dim: int, clusters: int, seed: int) -> Iterator[np.ndarray]:
    """Unit vectors around ``clusters`` random centres, in chunks (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((clusters, dim)).astype(np.float32))
    for start in range(0, count, IMPORT_CHUNK):
        n = min(IMPORT_CHUNK, count - start)
        yield _around(centres, n, rng)


def _around(centres: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points, each a random centre plus noise as large as the centre itself."""
    pick = rng.integers(len(centres), size=n)
    noise = rng.standard_normal((n, centres.shape[1])).astype(np.float32)
    return _unit(centres[pick] + noise / np.sqrt(centres.shape[1]))


def _unit(m: np.ndarray) -> np.ndarray:
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def as_stored(m: np.ndarray) -> np.ndarray:
    """The vectors as the catalog hands them back: float16 round trip, re-normalised."""
    return _unit(m.astype(np.float16).astype(np.float32))


def import_all(
    catalog: Catalog, collection: CollectionInfo, chunks: Iterator[np.ndarray]
) -> np.ndarray:
    """Import every chunk under external ids 0..n-1 (``Catalog.import_vectors``, the path
    ``assetsearch import-vectors`` takes); returns the matrix as stored."""
    stored, done = [], 0
    for chunk in chunks:
        ids = [str(done + i) for i in range(len(chunk))]
        catalog.import_vectors(collection, ids, chunk, row_offset=done)
        stored.append(as_stored(chunk))
        done += len(chunk)
    return np.concatenate(stored)


def exact_top(stored: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k row numbers per query (FAISS flat inner product)."""
    import faiss

    index = faiss.IndexFlatIP(stored.shape[1])
    index.add(stored)
    return index.search(queries, k)[1]


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    """Mean fraction of the true top-k found, over queries."""
    k = truth.shape[1]
    return float(
        np.mean([len(set(f[:k]) & set(t.tolist())) / k for f, t in zip(found, truth, strict=True)])
    )


# -- the server process -------------------------------------------------------------------


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path, url: str, threads: int) -> tuple[subprocess.Popen, int, float]:
    """Start ``assetsearch serve``; returns the process, its port and seconds to SERVING."""
    port = free_port()
    env = dict(
        os.environ,
        ASSETSEARCH_DATA_DIR=str(data_dir),
        ASSETSEARCH_DATABASE_URL=url,
        ASSETSEARCH_PORT=str(port),
        ASSETSEARCH_COLLECTION=COLLECTION,
        ASSETSEARCH_THREADS=str(threads),
    )
    log = (data_dir / f"server-{port}.log").open("w")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve"],
        cwd=common.ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_serving(port, proc)
    return proc, port, time.perf_counter() - started


def wait_serving(port: int, proc: subprocess.Popen, timeout: float = 1800) -> None:
    """Poll the health service until it says SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode} before serving")
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.05)
    raise RuntimeError("server did not become SERVING in time")


def wait_for_index(port: int, kind: str, timeout: float = 3600) -> float:
    """Wait until the server serves an index of ``kind`` with nothing pending; seconds."""
    from assetsearch_client import SearchClient

    started = time.perf_counter()
    with SearchClient(f"127.0.0.1:{port}") as client:
        while time.perf_counter() - started < timeout:
            served = {c.name: c for c in client.list_collections()}.get(COLLECTION)
            if served and served.index_type == kind and "pending" not in served.index_params:
                return time.perf_counter() - started
            time.sleep(0.5)
    raise RuntimeError(f"the server did not build a {kind} index in {timeout:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM (the server snapshots its indexes on the way out) and wait."""
    proc.terminate()
    proc.wait(timeout=600)


def rss_bytes(pid: int) -> int:
    """Resident set size of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# -- queries ------------------------------------------------------------------------------


def server_ids(response) -> list[int]:  # noqa: ANN001 - a SearchResponse
    """Row numbers (external ids) of a response's hits."""
    return [external_row(h.uri) for h in response.hits]


def external_row(uri: str) -> int:
    """The row number in an imported asset's uri (``vector:ROW``)."""
    return int(uri.removeprefix(URI_PREFIX))


def side_by_side(
    port: int, live: LiveIndex, queries: np.ndarray, uri_of: dict[int, int], result: Result
) -> tuple[list[list[int]], list[list[int]]]:
    """Each query through gRPC and in-process, alternately; returns both id lists."""
    import faiss
    from assetsearch_client import SearchClient

    # The server searches with ASSETSEARCH_SEARCH_THREADS FAISS threads per request: so
    # does the in-process side (OpenMP's count is per calling thread).
    search_threads = Settings().search_threads
    if search_threads:
        faiss.omp_set_num_threads(search_threads)
    index = live.generation.index
    via_server, local = [], []
    with SearchClient(f"127.0.0.1:{port}") as client:
        for i, q in enumerate(queries):
            t0 = time.perf_counter()
            _, ids = index.search(q, TOP_K)
            t1 = time.perf_counter()
            response = client.search(vector=q, top_k=TOP_K)
            t2 = time.perf_counter()
            if i >= WARMUP:
                result.local_ms.append((t1 - t0) * 1000)
                result.grpc_ms.append((t2 - t1) * 1000)
                result.took_ms.append(response.took_ms)
            local.append([uri_of[int(e)] for e in ids[0] if e >= 0])
            via_server.append(server_ids(response))
    return via_server[WARMUP:], local[WARMUP:]


def _client_loop(
    port: int, queries: np.ndarray, start_at: float, seconds: float, out: mp.Queue
) -> None:
    from assetsearch_client import SearchClient

    done = 0
    with SearchClient(f"127.0.0.1:{port}") as client:
        client.search(vector=queries[0], top_k=TOP_K)
        while time.time() < start_at:
            time.sleep(0.001)
        i = 0
        while time.time() < start_at + seconds:
            client.search(vector=queries[i % len(queries)], top_k=TOP_K)
            done, i = done + 1, i + 1
    out.put(done)


def throughput(port: int, queries: np.ndarray, clients: int, seconds: float) -> float:
    """Queries per second with ``clients`` processes searching at once."""
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    start_at = time.time() + 5.0  # time for every client to start and connect
    procs = [
        ctx.Process(target=_client_loop, args=(port, queries, start_at, seconds, out))
        for _ in range(clients)
    ]
    for p in procs:
        p.start()
    total = sum(out.get(timeout=seconds + 120) for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


# -- one size -----------------------------------------------------------------------------


def measure(count: int, args: argparse.Namespace, workdir: Path) -> Result:
    """Import ``count`` vectors, start the server twice, measure everything."""
    result = Result(count)
    data_dir = workdir / f"n{count}"
    data_dir.mkdir(parents=True)
    url = f"sqlite:///{data_dir / 'catalog.sqlite3'}"
    catalog = Catalog(url)
    collection = catalog.ensure_collection(COLLECTION, MODEL_SPEC, args.dim)
    chunks = clustered(count, args.dim, args.clusters, args.seed)
    stored, result.import_s = common.timed(lambda: import_all(catalog, collection, chunks))
    print(f"[{count}] imported in {result.import_s:.1f} s", flush=True)
    rng = np.random.default_rng(args.seed + 1)
    centres_rng = np.random.default_rng(args.seed)  # the same centres as the data
    centres = _unit(centres_rng.standard_normal((args.clusters, args.dim)).astype(np.float32))
    queries = _around(centres, args.queries + WARMUP, rng)
    truth = exact_top(stored, queries[WARMUP:], TOP_K)
    del stored

    baseline = measure_empty_rss(workdir, args.dim, args.threads)
    proc, port, result.start_sql_s = start_server(data_dir, url, args.threads)
    print(f"[{count}] server up from SQL in {result.start_sql_s:.1f} s", flush=True)
    wanted = Settings().index_policy().choose(count, args.dim).kind
    result.build_s = wait_for_index(port, wanted)
    print(f"[{count}] {wanted} built in the background {result.build_s:.1f} s later", flush=True)
    stop_server(proc)

    proc, port, result.start_snapshot_s = start_server(data_dir, url, args.threads)
    result.rss_per_asset = (rss_bytes(proc.pid) - baseline) / count
    print(
        f"[{count}] server up from snapshot in {result.start_snapshot_s:.1f} s, "
        f"{result.rss_per_asset:.0f} B RSS per asset",
        flush=True,
    )
    try:
        collection = catalog.collection(COLLECTION)
        live = LiveIndex(catalog, collection, data_dir / "snapshots")
        source, result.load_snapshot_s = common.timed(live.load)
        result.index_kind = describe(live)
        uri_of = uri_map(catalog, live)
        via_server, local = side_by_side(port, live, queries, uri_of, result)
        result.recall_server = recall(via_server, truth)
        result.recall_local = recall(local, truth)
        print(
            f"[{count}] {result.index_kind} from {source}: recall@10 server "
            f"{result.recall_server:.3f}, in-process {result.recall_local:.3f}",
            flush=True,
        )
        result.qps = throughput(port, queries, args.clients, args.seconds)
        print(f"[{count}] {result.qps:.0f} QPS with {args.clients} clients", flush=True)
    finally:
        stop_server(proc)
    fresh = LiveIndex(catalog, collection, None)
    _, result.load_sql_s = common.timed(fresh.load)
    catalog.close()
    return result


def measure_empty_rss(workdir: Path, dim: int, threads: int) -> int:
    """RSS of a server over an empty collection: the baseline that per-asset RSS excludes."""
    empty = workdir / "empty"
    if not empty.exists():
        empty.mkdir()
        catalog = Catalog(f"sqlite:///{empty / 'catalog.sqlite3'}")
        catalog.ensure_collection(COLLECTION, MODEL_SPEC, dim)
        catalog.close()
    proc, _, _ = start_server(empty, f"sqlite:///{empty / 'catalog.sqlite3'}", threads)
    try:
        return rss_bytes(proc.pid)
    finally:
        stop_server(proc)


def describe(live: LiveIndex) -> str:
    """The served index type, as the index says it."""
    index = live.generation.index
    return str(getattr(index, "description", type(index).__name__))


def uri_map(catalog: Catalog, live: LiveIndex) -> dict[int, int]:
    """Embedding id -> external row number."""
    ids = live.generation.index.ids().tolist()
    out: dict[int, int] = {}
    for start in range(0, len(ids), 50_000):
        joined = catalog.hits_for_embeddings(ids[start : start + 50_000])
        out.update({e: external_row(rec.uri) for e, (rec, _, _) in joined.items()})
    return out


# -- report -------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    """One column per size."""
    head = "| figure | " + " | ".join(f"N = {r.count:,}" for r in results) + " | target |"
    rows = [head, "|---|" + "---:|" * len(results) + "---|"]

    def row(name: str, values: list[str], target: str = "") -> None:
        rows.append(f"| {name} | " + " | ".join(values) + f" | {target} |")

    def p(samples: list[float], q: float) -> float:
        return common.percentile(samples, q)

    row("index served", [r.index_kind for r in results])
    row("recall@10 through the server", [f"{r.recall_server:.3f}" for r in results], "≥ 0.95")
    row("recall@10 in-process", [f"{r.recall_local:.3f}" for r in results])
    row(
        "vector query p50 / p99, gRPC round trip (ms)",
        [f"{p(r.grpc_ms, 50):.2f} / {p(r.grpc_ms, 99):.2f}" for r in results],
    )
    row(
        "same search in-process p50 / p99 (ms)",
        [f"{p(r.local_ms, 50):.2f} / {p(r.local_ms, 99):.2f}" for r in results],
    )
    row(
        "**server p50 − in-process p50 (ms)**",
        [f"**{p(r.grpc_ms, 50) - p(r.local_ms, 50):.2f}**" for r in results],
        "≤ 1 ms",
    )
    row(
        "server p50 / in-process p50",
        [f"{p(r.grpc_ms, 50) / p(r.local_ms, 50):.2f}" for r in results],
    )
    row("server-side took_ms p50", [f"{p(r.took_ms, 50):.2f}" for r in results])
    row("QPS, 8 concurrent client processes", [f"{r.qps:.0f}" for r in results])
    row("server RSS per asset (bytes)", [f"{r.rss_per_asset:.0f}" for r in results])
    row("import into SQLite (s)", [f"{r.import_s:.1f}" for r in results])
    row("server start to SERVING, from SQL alone (s)", [f"{r.start_sql_s:.1f}" for r in results])
    row(
        "… then the policy's index built in the background (s)",
        [f"{r.build_s:.1f}" for r in results],
    )
    row(
        "**server start to SERVING, from a snapshot (s)**",
        [f"**{r.start_snapshot_s:.1f}**" for r in results],
        "≤ 30 s at 1M",
    )
    row(
        "index load in-process, from SQL / from a snapshot (s)",
        [f"{r.load_sql_s:.1f} / {r.load_snapshot_s:.1f}" for r in results],
    )
    return "\n".join(rows)


def section(results: list[Result], args: argparse.Namespace, command: str) -> str:
    """The body of this benchmark's BENCHMARKS.md section."""
    return (
        f"{args.dim}-d unit vectors in {args.clusters} clusters (each a centre plus Gaussian "
        "noise of the same norm), imported into a SQLite catalog through "
        "`Catalog.import_vectors` (the path of `assetsearch import-vectors`). "
        "The server runs as its own process (`assetsearch serve`), with the index type its "
        "policy picks for the size. Start times are from process start to health SERVING "
        "(interpreter and imports included). "
        f"{args.queries} vector queries (fresh points from the same clusters), top_k = "
        f"{TOP_K}, each timed through `SearchClient` right beside the same search on the "
        "same snapshot loaded in the benchmark process, with the server's FAISS threads per "
        f"request ({Settings().search_threads}); recall is against exact search "
        "over the vectors as stored. RSS per asset is the RSS of the server started from "
        "the snapshot over that of a server with an empty collection. "
        f"Throughput: {args.clients} client processes for "
        f"{args.seconds:.0f} s.\n\n"
        f"Machine: {common.machine()}; {common.utc_now()}.\n"
        f"Command: `{command}`\n\n{table(results)}\n"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="100000", help="comma-separated collection sizes (default %(default)s)"
    )
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument(
        "--queries",
        type=int,
        default=500,
        help="timed vector queries per size (default %(default)s)",
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        help="length of the throughput run (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=0, help="FAISS threads in the server, as ASSETSEARCH_THREADS"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where catalogs and snapshots go (default: a temp dir)",
    )
    parser.add_argument(
        "--write", action="store_true", help=f'replace the "## {SECTION}" section of BENCHMARKS.md'
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run every size and print (and optionally record) the table."""
    args = parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-store-", dir=args.workdir) as tmp:
        results = [measure(n, args, Path(tmp)) for n in sizes]
    print(table(results))
    if args.write:
        command = common.command_line("bench/store.py", argv)
        common.replace_section(common.BENCHMARKS, SECTION, section(results, args, command))
        print(f"wrote section '## {SECTION}' of {common.BENCHMARKS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
