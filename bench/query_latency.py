"""Query latency: text and image queries through the real gRPC server, beside their parts alone.

N random unit vectors are imported straight through the catalog into a collection whose
model is the real one (so text and image queries embed with it), the real server is
started on a free port, and each query is timed through ``SearchClient`` right next to
the same work done in-process: the encoder's embedding, the FAISS search alone and the
catalog join alone. The gap between them is what the service adds.

Text queries run twice over, alternating: with the encoder's exact text truncation on and
off (distinct texts, so the server's query cache never serves them), and one repeated
text shows the cache. ``--arch ViT-B-32`` (any open_clip architecture) serves a model of
that size with seeded random weights, written to a temp dir for the run.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402 - bench/ is a folder of scripts, not a package
from assetsearch_client import SearchClient  # noqa: E402
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb  # noqa: E402

from latent.catalog import AssetWrite, Catalog, CollectionInfo  # noqa: E402
from latent.index.base import VectorIndex  # noqa: E402
from latent.media.images import decode_image_bytes  # noqa: E402
from latent.models.encoders import Encoder, EncoderCache, OpenClipEncoder  # noqa: E402
from latent.settings import Settings  # noqa: E402
from service.server import AssetSearchServer  # noqa: E402

SECTION = "Query latency"
IMPORT_BATCH = 1000
QUERY_IMAGES = 32  # distinct query images, cycled
WARMUP = 5
MAX_PIXELS = 64_000_000
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "black")
SHAPES = ("circle", "square", "triangle", "star", "ring", "cross")
UNCUT = "text (truncation off)"
REPEATED = "text, repeated (query cache)"

Samples = dict[str, list[float]]
Query = str | bytes | np.ndarray
T = TypeVar("T")


@dataclass(frozen=True)
class Setup:
    """The served collection and how long getting it ready took."""

    model: str
    dim: int
    count: int
    import_seconds: float
    start_seconds: float


def query_texts(n: int) -> list[str]:
    """``n`` short, distinct text queries."""
    return [
        f"a {COLOURS[i % len(COLOURS)]} {SHAPES[(i // len(COLOURS)) % len(SHAPES)]} number {i}"
        for i in range(n)
    ]


def query_images(n: int, seed: int) -> list[bytes]:
    """``n`` encoded query images, alternating PNG and JPEG."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        buf = io.BytesIO()
        common.render_image(rng).save(buf, format="PNG" if i % 2 else "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def import_vectors(catalog: Catalog, collection: CollectionInfo, count: int, seed: int) -> None:
    """Commit ``count`` assets with random unit vectors, in transactions of IMPORT_BATCH."""
    rng = np.random.default_rng(seed)
    for start in range(0, count, IMPORT_BATCH):
        n = min(IMPORT_BATCH, count - start)
        vectors = rng.standard_normal((n, collection.dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        writes = [
            AssetWrite(
                f"bench://vectors/{start + i}.png",
                "image",
                1,
                0,
                None,
                width=256,
                height=256,
                vectors=vectors[i : i + 1],
            )
            for i in range(n)
        ]
        catalog.commit(collection, writes)


def ms(fn: Callable[[], T], samples: list[float]) -> T:
    """Call ``fn``, append its wall time in milliseconds to ``samples``, return its result."""
    result, seconds = common.timed(fn)
    samples.append(seconds * 1000)
    return result


def embedder(encoder: Encoder, query: Query) -> Callable[[], np.ndarray]:
    """What the servicer does to embed a text or image-bytes query, as a call."""
    if isinstance(query, str):
        text = query
        return lambda: encoder.encode_texts([text])
    data = bytes(query)
    return lambda: encoder.encode_images([decode_image_bytes(data, MAX_PIXELS).image])


def searcher(client: SearchClient, query: Query, top_k: int) -> Callable[[], pb.SearchResponse]:
    """One Search call through the client for a text, image-bytes or vector query."""
    if isinstance(query, str):
        text = query
        return lambda: client.search(text=text, top_k=top_k)
    if isinstance(query, bytes):
        data = query
        return lambda: client.search(image=data, top_k=top_k)
    vector = query
    return lambda: client.search(vector=vector, top_k=top_k)


def in_process(
    kind: str,
    encoder: Encoder,
    index: VectorIndex,
    catalog: Catalog,
    query: Query,
    top_k: int,
    s: Samples,
) -> np.ndarray:
    """The service's work for one query, without the service; returns the query vector."""
    vector = ms(embedder(encoder, query), s[f"{kind}: embedding alone, in-process"])[0]
    _, ids = ms(lambda: index.search(vector, top_k), s["FAISS search alone"])
    found = [int(i) for i in ids[0] if i >= 0]
    ms(lambda: catalog.hits_for_embeddings(found), s["catalog join alone (hits_for_embeddings)"])
    return vector


def via_grpc(kind: str, client: SearchClient, query: Query, top_k: int, s: Samples) -> None:
    """One query through the client; records client wall time and the server's took_ms."""
    response = ms(searcher(client, query, top_k), s[f"{kind}: gRPC round trip"])
    if len(response.hits) != top_k:
        raise RuntimeError(f"{kind} query returned {len(response.hits)} hits, not {top_k}")
    s[f"{kind}: server-side took_ms"].append(float(response.took_ms))


def text_pair(encoder: Encoder, i: int, texts: list[str]) -> list[tuple[str, Query, bool]]:
    """Query ``i``'s two texts, truncation on and off, in an order that alternates with ``i``.

    An encoder without the switch gets the one text with truncation as it is.
    """
    if not isinstance(encoder, OpenClipEncoder):
        return [("text", texts[2 * i], True)]
    pair = [("text", texts[2 * i], True), (UNCUT, texts[2 * i + 1], False)]
    return pair if i % 2 == 0 else pair[::-1]


def run_queries(
    encoder: Encoder,
    index: VectorIndex,
    catalog: Catalog,
    client: SearchClient,
    n: int,
    top_k: int,
    seed: int,
) -> Samples:
    """Time ``n`` text and ``n`` image queries, each part side by side; warm-up excluded."""
    texts, images = query_texts(2 * (n + WARMUP)), query_images(QUERY_IMAGES, seed)
    samples: Samples = defaultdict(list)
    for i in range(n + WARMUP):
        s: Samples = samples if i >= WARMUP else defaultdict(list)
        for kind, text, truncate in text_pair(encoder, i, texts):
            if isinstance(encoder, OpenClipEncoder):
                encoder.truncate_text = truncate  # the server shares this model instance
            in_process(kind, encoder, index, catalog, text, top_k, s)
            via_grpc(kind, client, text, top_k, s)
        if isinstance(encoder, OpenClipEncoder):
            encoder.truncate_text = True
        via_grpc(REPEATED, client, texts[0], top_k, s)
        vector = in_process("image", encoder, index, catalog, images[i % len(images)], top_k, s)
        via_grpc("image", client, images[i % len(images)], top_k, s)
        via_grpc("vector", client, vector, top_k, s)
    return samples


def measure(model: str, count: int, queries: int, top_k: int, seed: int) -> tuple[Setup, Samples]:
    """Import the vectors, start the server, run the queries, stop everything."""
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url=f"sqlite:///{tmp}/catalog.sqlite3",
            model=model,
            poll_interval=1.0,
        )
        catalog = Catalog(settings.resolved_database_url())
        encoders = EncoderCache(batch_size=settings.batch_size)
        encoder = encoders.get(model)  # shared with the server: one model instance
        collection = catalog.ensure_collection(settings.collection, encoder.spec, encoder.dim)
        _, import_seconds = common.timed(lambda: import_vectors(catalog, collection, count, seed))
        server = AssetSearchServer(settings, catalog, encoders)
        port, start_seconds = common.timed(lambda: server.start(host="127.0.0.1", port=0))
        try:
            index = server.indexes.get(settings.collection).generation.index
            if len(index) != count:
                raise RuntimeError(f"served index holds {len(index)} vectors, not {count}")
            with SearchClient(f"127.0.0.1:{port}") as client:
                client.wait_ready()
                samples = run_queries(encoder, index, catalog, client, queries, top_k, seed)
        finally:
            server.stop(grace=1.0)
            catalog.close()
    return Setup(encoder.spec, encoder.dim, count, import_seconds, start_seconds), samples


ROWS = (
    "text: gRPC round trip",
    "text: server-side took_ms",
    "text: embedding alone, in-process",
    f"{UNCUT}: gRPC round trip",
    f"{UNCUT}: server-side took_ms",
    f"{UNCUT}: embedding alone, in-process",
    f"{REPEATED}: gRPC round trip",
    f"{REPEATED}: server-side took_ms",
    "image: gRPC round trip",
    "image: server-side took_ms",
    "image: embedding alone, in-process",
    "vector: gRPC round trip",
    "vector: server-side took_ms",
    "FAISS search alone",
    "catalog join alone (hits_for_embeddings)",
)


def table(s: Samples) -> str:
    """Latency percentiles per path, then what the service adds per query kind."""
    lines = ["| path | p50 ms | p99 ms | n |", "|---|---:|---:|---:|"]
    for name in (r for r in ROWS if s.get(r)):
        lines.append(
            f"| {name} | {common.percentile(s[name], 50):.2f} | "
            f"{common.percentile(s[name], 99):.2f} | {len(s[name])} |"
        )
    lines += [
        "",
        "| query | gRPC p50 − in-process p50 (embedding + FAISS + join) | "
        "gRPC p50 / in-process p50 |",
        "|---|---:|---:|",
    ]
    parts = ("FAISS search alone", "catalog join alone (hits_for_embeddings)")
    base = sum(common.median(s[p]) for p in parts)
    for kind in (k for k in ("text", UNCUT, "image") if s.get(f"{k}: gRPC round trip")):
        local = common.median(s[f"{kind}: embedding alone, in-process"]) + base
        remote = common.median(s[f"{kind}: gRPC round trip"])
        lines.append(f"| {kind} | {remote - local:.2f} ms | {remote / local:.2f} |")
    return "\n".join(lines)


def section(setup: Setup, s: Samples, args: argparse.Namespace, command: str, threads: str) -> str:
    """The body of a query-latency section of BENCHMARKS.md."""
    queries, top_k = args.queries, args.top_k
    model = f"`{setup.model}`"
    if args.arch:
        model = f"`{args.arch}` of seeded random weights (seed {args.seed}, a temp `local-dir:`)"
    cut = (
        f' "{UNCUT}" rows are the same number of other texts run with the encoder\'s exact '
        "truncation off, alternating with the default (on) in one process; "
        f'"{REPEATED}" is one text asked again each round (served by the query cache).'
        if s.get(f"{UNCUT}: gRPC round trip")
        else ""
    )
    return (
        f"Model {model} ({setup.dim}-d); N = {setup.count} random unit vectors imported "
        f"through `Catalog.commit` ({setup.import_seconds:.1f} s) into a collection of that "
        f"model; exact FAISS flat index; {threads}; server start with index load from SQL "
        f"{setup.start_seconds:.1f} s. {queries} text and {queries} image-bytes queries "
        f"(PNG/JPEG, 128–512 px), top_k = {top_k}, each timed through `SearchClient` right "
        "beside the same embedding, FAISS search and catalog join in-process (client and "
        "server share one process and one model instance). p99 of this many samples is "
        f"close to the maximum.{cut}\n\n"
        f"Machine: {common.machine()}; {common.utc_now()}.\n"
        f"Command: `{command}`\n\n{table(s)}\n"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--count", type=int, default=1000, help="vectors in the index (default %(default)s)"
    )
    parser.add_argument(
        "--queries", type=int, default=200, help="queries of each kind (default %(default)s)"
    )
    models = parser.add_mutually_exclusive_group()
    models.add_argument("--model", default=None, help=common.MODEL_HELP)
    models.add_argument(
        "--arch",
        default=None,
        help="serve this open_clip architecture (e.g. ViT-B-32) with seeded random weights",
    )
    parser.add_argument(
        "--top-k", type=int, default=10, help="hits per query (default %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=1124, help="vector and image seed (default %(default)s)"
    )
    common.add_threads_option(parser)
    parser.add_argument(
        "--write", action="store_true", help="replace the --section section of BENCHMARKS.md"
    )
    parser.add_argument(
        "--section", default=SECTION, help="the BENCHMARKS.md section (default %(default)r)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print (and optionally record) the table."""
    args = parse_args(argv)
    if args.top_k > args.count:
        raise SystemExit("--top-k must not exceed --count")
    threads = common.set_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-arch-") as tmp:
        model = args.model or common.default_model()
        if args.arch:
            model = common.write_random_arch(args.arch, Path(tmp), args.seed)
        print(
            f"model: {args.arch or model}; vectors: {args.count}; queries: {args.queries} of "
            f"each kind; {threads}",
            flush=True,
        )
        setup, samples = measure(model, args.count, args.queries, args.top_k, args.seed)
    print(
        f"imported {setup.count} vectors in {setup.import_seconds:.1f} s; server start "
        f"(index loaded from SQL) {setup.start_seconds:.1f} s"
    )
    print(table(samples))
    if args.write:
        command = common.command_line("bench/query_latency.py", argv)
        body = section(setup, samples, args, command, threads)
        common.replace_section(common.BENCHMARKS, args.section, body)
        print(f"wrote section '## {args.section}' of {common.BENCHMARKS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
