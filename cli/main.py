"""``assetsearch`` sub-commands: index, serve, search, status, db, demo-library."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from latent.errors import AssetSearchError
from latent.settings import Settings

log = logging.getLogger("assetsearch")


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the flags that were given."""
    overrides: dict[str, Any] = {}
    for key in (
        "data_dir",
        "database_url",
        "model",
        "collection",
        "host",
        "port",
        "server",
        "batch_size",
        "threads",
    ):
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = value
    settings = Settings(**overrides)
    settings.apply_threads()
    return settings


def _catalog(settings: Settings) -> Any:
    from latent.catalog import Catalog

    return Catalog(settings.resolved_database_url())


def cmd_index(args: argparse.Namespace) -> int:
    """Index library paths into a collection."""
    from tqdm import tqdm

    from indexer.pipeline import Indexer
    from latent.encoders import load_encoder

    settings = _settings(args)
    catalog = _catalog(settings)
    bar = tqdm(unit="file", disable=not sys.stderr.isatty(), file=sys.stderr)
    indexer = Indexer(
        catalog,
        lambda spec: load_encoder(spec, batch_size=settings.batch_size),
        settings.collection,
        settings.model,
        batch_size=settings.batch_size,
        max_pixels=settings.max_image_pixels,
        progress=bar.update,
    )
    try:
        summary = indexer.run(args.paths, model_explicit=args.model is not None)
    finally:
        bar.close()
    for path, reason in summary.failures[:20]:
        print(f"failed: {path}: {reason}", file=sys.stderr)
    print(summary)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve gRPC until SIGINT or SIGTERM."""
    from service.server import AssetSearchServer

    settings = _settings(args)
    server = AssetSearchServer(settings, _catalog(settings))
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    port = server.start(wait_ready=False)
    print(f"assetsearch serving on {settings.host}:{port} (Ctrl-C to stop)", flush=True)
    done.wait()
    print("stopping...", file=sys.stderr)
    server.stop()
    return 0


def _hit_dict(rank: int, hit: Any) -> dict[str, Any]:
    out = {
        "rank": rank,
        "asset_id": hit.asset_id,
        "uri": hit.uri,
        "score": round(hit.score, 6),
        "media_type": hit.media_type,
        "width": hit.width,
        "height": hit.height,
    }
    if hit.HasField("segment_start"):
        out["segment_start"], out["segment_end"] = hit.segment_start, hit.segment_end
    return out


def cmd_search(args: argparse.Namespace) -> int:
    """Search a running server and print the hits."""
    from latent.algebra import terms_from_expression
    from service.client import SearchClient

    settings = _settings(args)
    query: dict[str, Any] = {}
    if args.text is not None:
        query["text"] = args.text
    if args.image is not None:
        query["image"] = Path(args.image).read_bytes()
    if args.like is not None:
        query["asset_id"] = args.like
    if args.vector_file is not None:
        query["vector"] = np.load(args.vector_file, allow_pickle=False)
    if args.expr is not None:
        query["terms"] = terms_from_expression(args.expr, lambda p: Path(p).read_bytes())
    if len(query) != 1:
        print(
            "error: give exactly one of TEXT, --image, --like, --vector-file or --expr",
            file=sys.stderr,
        )
        return 2
    with SearchClient(settings.server) as client:
        response = client.search(top_k=args.top_k, collection=args.collection or "", **query)
    for rank, hit in enumerate(response.hits, 1):
        if args.json:
            print(json.dumps(_hit_dict(rank, hit)))
        else:
            print(f"{rank:>3}  {hit.score:7.4f}  #{hit.asset_id:<7} {hit.media_type:<6} {hit.uri}")
    if not args.json:
        print(
            f"({len(response.hits)} hits from {response.collection}, "
            f"{response.index_size} vectors, "
            f"{response.took_ms:.1f} ms)",
            file=sys.stderr,
        )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print each collection's model, dimension and counts by state."""
    settings = _settings(args)
    collections = _catalog(settings).collections()
    if args.json:
        print(
            json.dumps(
                {
                    "database": _safe_url(settings.resolved_database_url()),
                    "collections": {
                        c.name: {
                            "model_spec": c.model_spec,
                            "dim": c.dim,
                            "metric": c.metric,
                            **c.counts,
                        }
                        for c in collections
                    },
                }
            )
        )
        return 0
    if not collections:
        print("no collections yet: run `assetsearch index PATH`")
    for c in collections:
        counts = ", ".join(f"{k} {v}" for k, v in c.counts.items())
        print(f"{c.name}: {c.model_spec} ({c.dim}-d, {c.metric}): {counts}")
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def cmd_db(args: argparse.Namespace) -> int:
    """Migrate the catalog schema."""
    from latent.catalog import Catalog

    settings = _settings(args)
    catalog = Catalog(settings.resolved_database_url(), migrate=False)
    if args.db_command == "upgrade":
        catalog.upgrade(args.revision)
    elif args.db_command == "downgrade":
        catalog.downgrade(args.revision)
    print(f"catalog {_safe_url(catalog.url)} at revision {catalog.schema_revision()}")
    return 0


def cmd_demo_library(args: argparse.Namespace) -> int:
    """Write the procedural demo library."""
    from latent.demo_world import generate_library

    written = generate_library(Path(args.dir), count=args.count, seed=args.seed, videos=args.videos)
    print(f"wrote {written} files to {args.dir}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        type=Path,
        help="data directory (ASSETSEARCH_DATA_DIR, default ./.assetsearch)",
    )
    p.add_argument(
        "--database-url",
        help="catalog URL (ASSETSEARCH_DATABASE_URL; default SQLite in the data dir)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="assetsearch",
        description="Semantic search over image libraries (open_clip + FAISS + SQL, gRPC).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("index", help="index new and changed files, mark vanished ones deleted")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders, scanned recursively")
    p.add_argument(
        "--collection", help="collection name (ASSETSEARCH_COLLECTION, default 'default')"
    )
    p.add_argument("--model", help="model spec for a new collection (ASSETSEARCH_MODEL)")
    p.add_argument("--batch-size", type=int, help="images per encoder batch (default 32)")
    p.add_argument(
        "--threads", type=int, help="torch/FAISS threads (ASSETSEARCH_THREADS; 0: default)"
    )
    _common(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("serve", help="serve the gRPC API")
    p.add_argument("--host", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 50051; 0 picks a free one)")
    p.add_argument(
        "--threads", type=int, help="torch/FAISS threads (ASSETSEARCH_THREADS; 0: default)"
    )
    _common(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("search", help="search a running server")
    p.add_argument("text", nargs="?", help="text query")
    p.add_argument("--image", metavar="FILE", help="search by an image file")
    p.add_argument("--like", type=int, metavar="ASSET_ID", help="search by an indexed asset")
    p.add_argument(
        "--vector-file", metavar="FILE.npy", help="search by a raw vector saved with numpy.save"
    )
    p.add_argument(
        "--expr",
        metavar="EXPR",
        help="""a query expression, e.g. '"red circle" - "red" + 2*"blue"', asset:42, """
        "image:a.jpg, 0.5*asset:7, parentheses",
    )
    p.add_argument("--top-k", type=int, default=10, help="number of hits (default 10)")
    p.add_argument("--collection", help="collection (default: the server's default)")
    p.add_argument(
        "--server", help="HOST:PORT of the server (ASSETSEARCH_SERVER, default 127.0.0.1:50051)"
    )
    p.add_argument("--json", action="store_true", help="print JSON Lines, one object per hit")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("status", help="collections, models and asset counts (reads the catalog)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _common(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("db", help="catalog schema migrations")
    dbsub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = dbsub.add_parser("upgrade", help="migrate to the newest revision (or --revision)")
    up.add_argument("--revision", default="head")
    _common(up)
    down = dbsub.add_parser("downgrade", help="migrate down to --revision (base drops every table)")
    down.add_argument("--revision", required=True)
    _common(down)
    cur = dbsub.add_parser("current", help="print the current revision")
    _common(cur)
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("demo-library", help="write the procedural demo library with labels.jsonl")
    p.add_argument("dir", help="output folder")
    p.add_argument("--count", type=int, default=500, help="number of images (default 500)")
    p.add_argument(
        "--seed", type=int, default=0, help="random seed; the same seed gives the same bytes"
    )
    p.add_argument("--videos", type=int, default=0, help="number of short videos (default 0)")
    p.set_defaults(func=cmd_demo_library)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``assetsearch`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except AssetSearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except grpc.RpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)  # type: ignore[attr-defined]
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
