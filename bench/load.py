"""Load: concurrent client processes of mixed text, image and vector queries on a real server.

The procedural demo library is generated and indexed (``assetsearch index``) with the demo
model into a temp SQLite catalog, the server runs as its own process (``assetsearch
serve``, auth off on loopback, the query cache off so every text and image query is
embedded), and client processes, each with its own light client, query it for M seconds,
a third each text (from the library's labels), image bytes (library files) and vectors:

1. closed loop (each client sends its next query when the last one returns), raising the
   number of clients until QPS stops rising: the maximum QPS and the concurrency that
   reached it;
2. open loop at 80% of that QPS (queries arrive at a fixed rate, whatever the latency;
   latency runs from each query's scheduled arrival): target zero errors, p99 ≤ 3× p50;
3. open loop at 2× the maximum, the server restarted with ``ASSETSEARCH_MAX_IN_FLIGHT``
   set to that concurrency: target the excess refused with RESOURCE_EXHAUSTED, no other
   errors, and the admitted calls' p99 within 2× of step 2's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402 - bench/ is a folder of scripts, not a package
from store import free_port, stop_server, wait_serving  # noqa: E402

SECTION = "Load"
KINDS = ("text", "image", "vector")
OK = "OK"
REFUSED = "RESOURCE_EXHAUSTED"
UNLIMITED_IN_FLIGHT = 1000  # the sweep and the 80% run: admission control out of the way
QUERY_IMAGES = 64  # library files used as image queries, cycled
CALL_TIMEOUT = 10.0  # seconds: a call slower than this counts as DEADLINE_EXCEEDED
SPAWN_TIMEOUT = 300.0

Record = tuple[str, str, float, float]  # kind, status, latency ms, end (s after the start)


@dataclass(frozen=True)
class Workload:
    """What every client process sends: the queries, cycled, and how."""

    address: str
    texts: tuple[str, ...]
    images: tuple[str, ...]  # paths, read by each client process
    dim: int
    top_k: int
    seed: int


@dataclass(frozen=True)
class ClientPlan:
    """One client process's part of a run; ``rate`` None is a closed loop."""

    index: int
    processes: int
    seconds: float
    rate: float | None  # arrivals per second of ALL processes together (open loop)
    threads: int  # calls one open-loop process may have outstanding


@dataclass
class Run:
    """Every call of one run: its kind, status and latency."""

    name: str
    clients: int
    seconds: float
    max_in_flight: int
    offered: float | None = None  # open loop: arrivals per second
    latency_ms: list[float] = field(default_factory=list)  # OK calls only
    kinds: list[str] = field(default_factory=list)  # of the OK calls
    statuses: Counter[str] = field(default_factory=Counter)
    span: float = 0.0  # seconds from the start to the last call's end

    @property
    def qps(self) -> float:
        """Successful calls per second, over the run or until the last call ended if later."""
        return self.statuses[OK] / max(self.seconds, self.span)

    def p(self, q: float, kind: str | None = None) -> float:
        """The q-th latency percentile of the OK calls (of one kind), in ms; nan if none."""
        samples = [
            ms for ms, k in zip(self.latency_ms, self.kinds, strict=True) if kind in (None, k)
        ]
        return common.percentile(samples, q) if samples else float("nan")

    def errors(self) -> dict[str, int]:
        """Calls that did not succeed, by status."""
        return {s: n for s, n in sorted(self.statuses.items()) if s != OK}


# -- the client processes ------------------------------------------------------------------


def _queries(work: Workload, index: int) -> Iterator[tuple[str, dict[str, object]]]:
    """This process's endless query stream: (kind, SearchClient.search keyword arguments)."""
    rng = np.random.default_rng(work.seed + index)
    images = [Path(p).read_bytes() for p in work.images]
    i = index  # processes start at different places of the same mix
    while True:
        kind = KINDS[i % len(KINDS)]
        if kind == "text":
            yield kind, {"text": work.texts[i % len(work.texts)]}
        elif kind == "image":
            yield kind, {"image": images[i % len(images)]}
        else:
            vector = rng.standard_normal(work.dim).astype(np.float32)
            yield kind, {"vector": vector / np.linalg.norm(vector)}
        i += 1


def _call(client: object, query: dict[str, object], top_k: int) -> str:
    """One search; returns its status name."""
    from assetsearch_client import AssetSearchError

    try:
        client.search(top_k=top_k, **query)  # type: ignore[attr-defined]
    except AssetSearchError as exc:
        return exc.status.name
    except Exception as exc:  # noqa: BLE001 - a client-side failure is a figure too
        return f"client {type(exc).__name__}"
    return OK


def client_main(
    work: Workload, plan: ClientPlan, ready: Any, go: Any, start: Any, out: Any
) -> None:
    """One client process: connect, warm up, wait for the start, run, report."""
    from assetsearch_client import SearchClient

    queries = _queries(work, plan.index)
    with SearchClient(work.address, timeout=CALL_TIMEOUT) as client:
        client.wait_ready()
        for _ in KINDS:  # one of each kind, not counted
            _call(client, next(queries)[1], work.top_k)
        ready.put(plan.index)
        go.wait()
        t0 = start.value
        end = t0 + plan.seconds
        if plan.rate is None:
            records = _closed_loop(client, queries, work.top_k, t0, end)
        else:
            records = _open_loop(client, queries, work.top_k, plan, t0, end)
    out.put(records)


def _sleep_until(t: float) -> None:
    delay = t - time.time()
    if delay > 0:
        time.sleep(delay)


def _closed_loop(
    client: object, queries: Iterator, top_k: int, t0: float, end: float
) -> list[Record]:
    _sleep_until(t0)
    records = []
    while time.time() < end:
        kind, query = next(queries)
        started = time.perf_counter()
        status = _call(client, query, top_k)
        records.append((kind, status, (time.perf_counter() - started) * 1000, time.time() - t0))
    return records


def _open_loop(
    client: object, queries: Iterator, top_k: int, plan: ClientPlan, t0: float, end: float
) -> list[Record]:
    """Send at fixed times (this process's share of the rate, interleaved with the others')."""
    assert plan.rate is not None
    interval = plan.processes / plan.rate
    records: list[Record] = []
    lock = threading.Lock()

    def one(at: float, kind: str, query: dict[str, object]) -> None:
        status = _call(client, query, top_k)
        done = time.time()
        with lock:  # latency from the scheduled arrival: queueing counts
            records.append((kind, status, (done - at) * 1000, done - t0))

    with ThreadPoolExecutor(max_workers=plan.threads) as pool:
        j = 0
        while (at := t0 + (j + plan.index / plan.processes) * interval) < end:
            kind, query = next(queries)
            _sleep_until(at)
            pool.submit(one, at, kind, query)
            j += 1
    return records


def run_clients(work: Workload, run: Run, threads: int) -> Run:
    """Start ``run.clients`` processes, start them together, collect every call."""
    ctx = mp.get_context("spawn")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    start = ctx.Value("d", 0.0)
    plans = [
        ClientPlan(i, run.clients, run.seconds, run.offered, threads) for i in range(run.clients)
    ]
    procs = [
        ctx.Process(target=client_main, args=(work, plan, ready, go, start, out), daemon=True)
        for plan in plans
    ]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            ready.get(timeout=SPAWN_TIMEOUT)
        start.value = time.time() + 0.2
        go.set()
        for _ in procs:
            for kind, status, latency, done in out.get(timeout=run.seconds + 4 * CALL_TIMEOUT + 60):
                run.statuses[status] += 1
                run.span = max(run.span, done)
                if status == OK:
                    run.kinds.append(kind)
                    run.latency_ms.append(latency)
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    return run


# -- the library and the server ------------------------------------------------------------


def cli(*args: str, env: dict[str, str], log: Path) -> None:
    """Run an ``assetsearch`` command to completion (its output into ``log``)."""
    with log.open("a") as f:
        subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            cwd=common.ROOT,
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT,
            check=True,
        )


def texts_from_labels(library: Path) -> tuple[str, ...]:
    """Text queries a user of this library would type: one per image, from its labels."""
    out = []
    for line in (library / "labels.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        things = " and ".join(f"a {o['size']} {o['color']} {o['shape']}" for o in row["objects"])
        out.append(f"{things} on {row['background']}")
    return tuple(out)


def prepare(workdir: Path, args: argparse.Namespace) -> dict[str, str]:
    """Generate and index the demo library; returns the server's base environment."""
    from latent.demo.world import generate_library

    library = workdir / "library"
    generate_library(library, count=args.images, seed=args.seed)
    env = dict(
        os.environ,
        ASSETSEARCH_DATA_DIR=str(workdir / "data"),
        ASSETSEARCH_DATABASE_URL=f"sqlite:///{workdir / 'catalog.sqlite3'}",
        ASSETSEARCH_MODEL=args.model,
        ASSETSEARCH_THREADS=str(args.threads),
    )
    started = time.perf_counter()
    cli(
        "index",
        str(library),
        "--metadata",
        str(library / "labels.jsonl"),
        env=env,
        log=workdir / "index.log",
    )
    print(f"indexed {args.images} demo images in {time.perf_counter() - started:.1f} s", flush=True)
    return env


@contextmanager
def serving(workdir: Path, env: dict[str, str], max_in_flight: int) -> Iterator[str]:
    """``assetsearch serve`` on a free loopback port for the block; yields its address."""
    port = free_port()
    server_env = dict(
        env,
        ASSETSEARCH_HOST="127.0.0.1",
        ASSETSEARCH_PORT=str(port),
        ASSETSEARCH_AUTH="off",
        ASSETSEARCH_MAX_IN_FLIGHT=str(max_in_flight),
        ASSETSEARCH_QUERY_CACHE_SIZE="0",
        ASSETSEARCH_SHUTDOWN_GRACE="5",
    )
    log = (workdir / f"server-{port}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve"],
        cwd=common.ROOT,
        env=server_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_serving(port, proc, timeout=600)
        yield f"127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            stop_server(proc)
        log.close()


def workload(address: str, library: Path, args: argparse.Namespace) -> Workload:
    """The queries, and the served collection's dimension."""
    from assetsearch_client import SearchClient

    with SearchClient(address) as client:
        collections = client.list_collections()
    if not collections or not collections[0].index_size:
        raise RuntimeError("the server serves no indexed collection")
    images = sorted(str(p) for p in library.rglob("*.png"))[:QUERY_IMAGES]
    texts = texts_from_labels(library)
    return Workload(address, texts, tuple(images), collections[0].dim, args.top_k, args.seed)


# -- the procedure -------------------------------------------------------------------------


def sweep(work: Workload, args: argparse.Namespace) -> list[Run]:
    """Closed loop at each client count until QPS stops rising by ``args.rise``."""
    runs: list[Run] = []
    for clients in args.clients:
        run = run_clients(
            work, Run(f"closed, {clients}", clients, args.seconds, UNLIMITED_IN_FLIGHT), 1
        )
        runs.append(run)
        show(run)
        best = max(r.qps for r in runs[:-1]) if len(runs) > 1 else 0.0
        if len(runs) > 1 and run.qps < best * (1 + args.rise):
            break
    return runs


def measure(workdir: Path, args: argparse.Namespace) -> tuple[list[Run], Run, Run, Workload]:
    """The whole procedure: sweep, 80% and 2× runs."""
    env = prepare(workdir, args)
    with serving(workdir, env, UNLIMITED_IN_FLIGHT) as address:
        work = workload(address, workdir / "library", args)
        runs = sweep(work, args)
        peak = max(runs, key=lambda r: r.qps)
        steady = Run(
            "open, 80% of max", peak.clients, args.seconds, UNLIMITED_IN_FLIGHT, 0.8 * peak.qps
        )
        show(run_clients(work, steady, args.open_threads))
    with serving(workdir, env, peak.clients) as address:
        work = dataclasses.replace(work, address=address)
        over = Run("open, 2× max", peak.clients, args.seconds, peak.clients, 2 * peak.qps)
        show(run_clients(work, over, args.open_threads))
    return runs, steady, over, work


def show(run: Run) -> None:
    """One progress line per run."""
    offered = f", offered {run.offered:.1f}/s" if run.offered else ""
    print(
        f"{run.name}: {run.qps:.1f} QPS{offered}, p50 {run.p(50):.1f} ms, p99 {run.p(99):.1f} ms, "
        f"errors {run.errors() or 'none'}",
        flush=True,
    )


# -- the report ----------------------------------------------------------------------------


def _errors(run: Run) -> str:
    return ", ".join(f"{s} {n}" for s, n in run.errors().items()) or "none"


def runs_table(runs: list[Run]) -> str:
    """One row per run."""
    lines = [
        "| run | client processes | offered /s | server max_in_flight | OK QPS | p50 ms | "
        "p99 ms | text / image / vector p50 ms | calls | errors by status |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in runs:
        offered = f"{r.offered:.1f}" if r.offered else "closed loop"
        kinds = " / ".join(f"{r.p(50, k):.1f}" for k in KINDS)
        lines.append(
            f"| {r.name} | {r.clients} | {offered} | {r.max_in_flight} | {r.qps:.1f} | "
            f"{r.p(50):.1f} | {r.p(99):.1f} | {kinds} | {sum(r.statuses.values())} | "
            f"{_errors(r)} |"
        )
    return "\n".join(lines)


def targets(steady: Run, over: Run) -> list[tuple[str, str, bool]]:
    """(target, figure, met) for each of the issue's targets."""
    ratio = steady.p(99) / steady.p(50)
    refused = over.statuses[REFUSED]
    other = {s: n for s, n in over.errors().items() if s != REFUSED}
    p99_ratio = over.p(99) / steady.p(99)
    return [
        ("80%: zero errors", _errors(steady), not steady.errors()),
        ("80%: p99 ≤ 3× p50", f"p99 / p50 = {ratio:.2f}", ratio <= 3.0),
        (
            "2×: the excess gets RESOURCE_EXHAUSTED",
            f"{refused} of {sum(over.statuses.values())} refused; "
            f"{over.statuses[OK]} admitted ({over.qps:.1f}/s)",
            refused > 0,
        ),
        (
            "2×: no other errors",
            ", ".join(f"{s} {n}" for s, n in other.items()) or "none",
            not other,
        ),
        (
            "2×: admitted p99 ≤ 2× the 80% run's p99",
            f"{over.p(99):.1f} ms vs {steady.p(99):.1f} ms (×{p99_ratio:.2f})",
            p99_ratio <= 2.0,
        ),
    ]


def targets_table(rows: list[tuple[str, str, bool]]) -> str:
    """The targets, each met or **missed**."""
    lines = ["| target | figure | |", "|---|---|---|"]
    lines += [f"| {t} | {f} | {'met' if ok else '**missed**'} |" for t, f, ok in rows]
    return "\n".join(lines)


def section(
    runs: list[Run],
    steady: Run,
    over: Run,
    work: Workload,
    args: argparse.Namespace,
    command: str,
    load: str,
) -> str:
    """The body of the Load section of BENCHMARKS.md."""
    peak = max(runs, key=lambda r: r.qps)
    admission = (common.ROOT / "service" / "admission.py").exists()
    return (
        f"Model `{args.model}` ({work.dim}-d), served by `assetsearch serve` as its own process "
        f"over a SQLite catalog of {args.images} demo images (seed {args.seed}), exact flat "
        "index, query cache off (`ASSETSEARCH_QUERY_CACHE_SIZE=0`: every text and image is "
        f"embedded), server torch threads {args.threads or 'default'}, auth off on loopback. "
        f"Each client is a process with its own `SearchClient`; queries cycle text (from the "
        f"library's labels), image bytes ({len(work.images)} library PNGs) and random unit "
        f"vectors, a third each, top_k = {args.top_k}, {args.seconds:.0f} s a run. Closed loop: "
        f"client counts {', '.join(map(str, (r.clients for r in runs)))} until QPS rose by less "
        f"than {args.rise:.0%}; the maximum was {peak.qps:.1f} QPS with {peak.clients} "
        f"client{'' if peak.clients == 1 else 's'}. "
        "Open loop: the same number of processes send at fixed times (a fixed total rate), "
        "latency from each query's scheduled arrival; the 2× run restarts the server with "
        f"`ASSETSEARCH_MAX_IN_FLIGHT={peak.clients}` (the concurrency of the maximum). "
        "Clients and server share the machine's cores."
        + ("" if admission else " `service/admission.py` did not exist at the time of this run.")
        + f"\n\nMachine: `{platform.platform()}`; {common.machine()}; {load}; "
        f"{common.utc_now()}.\nCommand: `{command}`\n\n"
        f"{runs_table([*runs, steady, over])}\n\n{targets_table(targets(steady, over))}\n"
    )


def load_average() -> str:
    """The 1-minute load average, as the report shows it."""
    return f"load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "load unknown"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help=common.MODEL_HELP)
    parser.add_argument(
        "--images", type=int, default=400, help="demo images indexed (default %(default)s)"
    )
    parser.add_argument(
        "--seconds", type=float, default=15.0, help="length of each run (default %(default)s)"
    )
    parser.add_argument(
        "--clients",
        default="1,2,4,8,16,32",
        help="closed-loop client counts, tried in order (default %(default)s)",
    )
    parser.add_argument(
        "--rise",
        type=float,
        default=0.05,
        help="stop raising clients when QPS rises by less than this share (default %(default)s)",
    )
    parser.add_argument(
        "--open-threads",
        type=int,
        default=32,
        help="calls one open-loop client process may have outstanding (default %(default)s)",
    )
    parser.add_argument(
        "--top-k", type=int, default=10, help="hits per query (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=2026, help="library seed (default %(default)s)")
    parser.add_argument(
        "--threads", type=int, default=0, help="server torch/FAISS threads, as ASSETSEARCH_THREADS"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 60 images, 1 and 2 clients, 3 s runs"
    )
    parser.add_argument(
        "--write", action="store_true", help=f'replace the "## {SECTION}" section of BENCHMARKS.md'
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.seconds, args.clients = 60, 3.0, "1,2"
    args.clients = [int(c) for c in str(args.clients).split(",")]
    args.model = args.model or common.default_model()
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the procedure and print (and optionally record) the tables."""
    args = parse_args(argv)
    before = load_average()
    print(f"{platform.platform()}; {common.machine()}; model {args.model}; {before}")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        runs, steady, over, work = measure(Path(tmp), args)
    load = f"{before} before the run, {os.getloadavg()[0]:.2f} after it"
    print(runs_table([*runs, steady, over]))
    print()
    print(targets_table(targets(steady, over)))
    if args.write:
        command = common.command_line("bench/load.py", argv)
        body = section(runs, steady, over, work, args, command, load)
        common.replace_section(common.BENCHMARKS, SECTION, body)
        print(f"wrote section '## {SECTION}' of {common.BENCHMARKS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
