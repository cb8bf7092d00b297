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

    from indexer.metadata import load_metadata
    from indexer.pipeline import Indexer
    from latent.models.encoders import load_encoder

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
        metadata=load_metadata(args.metadata) if args.metadata else None,
    )
    try:
        summary = indexer.run(args.paths, model_explicit=args.model is not None)
    finally:
        bar.close()
    for path, reason in summary.failures[:20]:
        print(f"failed: {path}: {reason}", file=sys.stderr)
    print(summary)
    return 0


def cmd_import_vectors(args: argparse.Namespace) -> int:
    """Import vectors computed elsewhere into a collection of the catalog."""
    from tqdm import tqdm

    from indexer.vector_files import import_files

    if args.batch_rows < 1:
        print("error: --batch-rows must be at least 1", file=sys.stderr)
        return 2
    settings = _settings(args)
    bar = tqdm(unit="vec", disable=not sys.stderr.isatty(), file=sys.stderr)
    try:
        summary = import_files(
            _catalog(settings),
            Path(args.vectors),
            Path(args.ids),
            settings.collection,
            model_spec=args.model or "",
            metadata_path=Path(args.metadata) if args.metadata else None,
            chunk=args.batch_rows,
            progress=bar.update,
        )
    finally:
        bar.close()
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
    from assetsearch_client import SearchClient

    from latent.query.expressions import terms_from_expression

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
    if args.pages < 0:
        print("error: --pages must be 0 (all) or more", file=sys.stderr)
        return 2
    where = _filter_arg(args.filter)
    shown, response, token = 0, None, args.page_token or ""
    with SearchClient(settings.server) as client:
        for page in range(args.pages or sys.maxsize):
            response = client.search(
                top_k=args.top_k,
                collection=args.collection or "",
                explain=args.explain,
                diversity=args.diversity,
                dedup_threshold=args.dedup,
                snap=args.snap,
                filter=where,
                page_token=token,
                **query,
            )
            _print_search_page(response, args.json, explain=page == 0)
            shown, token = shown + len(response.hits), response.next_page_token
            if not token:
                break
    if response is not None:
        _print_search_end(response, shown, args.json)
    return 0


def _print_search_page(response: Any, as_json: bool, explain: bool) -> None:
    explanation = response.explanation if response.HasField("explanation") else None
    for rank, hit in enumerate(response.hits, response.offset + 1):
        if as_json:
            row = _hit_dict(rank, hit)
            if explanation is not None:
                row["term_cosines"] = dict(
                    zip(explanation.terms, map(_round, hit.term_cosines), strict=True)
                )
            print(json.dumps(row))
        else:
            print(f"{rank:>3}  {hit.score:7.4f}  #{hit.asset_id:<7} {hit.media_type:<6} {hit.uri}")
    if explanation is not None and explain:
        _print_explanation(explanation, as_json)
    if response.collection_changed:
        print(
            "warning: the collection changed since the page token was issued; a hit may "
            "repeat or be missed (search again without --page-token for an exact walk)",
            file=sys.stderr,
        )


def _print_search_end(response: Any, shown: int, as_json: bool) -> None:
    # stdout stays one hit per line (JSON Lines with --json); the page token goes to stderr.
    token = response.next_page_token
    if not as_json:
        print(
            f"({shown} hits from {response.collection}, {response.index_size} vectors, "
            f"{response.took_ms:.1f} ms)",
            file=sys.stderr,
        )
    if token:
        print(f"more: --page-token {token}", file=sys.stderr)


def _filter_arg(texts: list[str] | None) -> Any:
    """The --filter flags (all must hold) as one Filter; None when none is given."""
    from latent.query.filters import combine, parse_filter
    from service.convert import filter_message

    if not texts:
        return None
    return filter_message(combine([parse_filter(t, _absolute) for t in texts]))


def _absolute(path: str) -> str:
    """A filter's path, resolved here on the client like the indexer resolves its roots."""
    return str(Path(path).expanduser().resolve())


def _round(x: float) -> float:
    return round(float(x), 4)


def _print_explanation(explanation: Any, as_json: bool) -> None:
    density = explanation.density if explanation.HasField("density") else None
    if as_json:
        out: dict[str, Any] = {"explanation": {"terms": list(explanation.terms)}}
        if density is not None:
            out["explanation"]["density"] = {
                "knn_similarity": _round(density.knn_similarity),
                "typical_similarity": _round(density.typical_similarity),
                "ratio": _round(density.ratio),
                "is_hole": density.is_hole,
                "snapped": density.snapped,
            }
        print(json.dumps(out))
        return
    print("terms: " + "  ".join(explanation.terms), file=sys.stderr)
    if density is not None:
        verdict = "a hole (sparse region)" if density.is_hole else "a populated region"
        snapped = "; snapped to its neighbours" if density.snapped else ""
        print(f"density: {density.ratio:.2f} of typical ({verdict}{snapped})", file=sys.stderr)


def _read_image(path: str) -> bytes:
    return Path(path).expanduser().read_bytes()


def _query_arg(text: str) -> list[Any]:
    """Terms of an expression argument; image:PATH files are read here, on the client."""
    from latent.query.expressions import terms_from_expression

    return terms_from_expression(text, _read_image)


def _print_steps(steps: Any, as_json: bool) -> None:
    for result in steps:
        if as_json:
            hits = [_hit_dict(rank, h) for rank, h in enumerate(result.hits, 1)]
            print(
                json.dumps({"step": result.step, "t": _round(result.t), "hits": hits}), flush=True
            )
            continue
        print(f"step {result.step} (t={result.t:.3f})")
        for rank, hit in enumerate(result.hits, 1):
            print(f"  {rank:>3}  {hit.score:7.4f}  #{hit.asset_id:<7} {hit.uri}")


def cmd_interpolate(args: argparse.Namespace) -> int:
    """Stream the hits along a path between two queries."""
    from assetsearch_client import SearchClient

    settings = _settings(args)
    with SearchClient(settings.server) as client:
        steps = client.interpolate(
            _query_arg(args.source),
            _query_arg(args.target),
            steps=args.steps,
            method=args.method,
            top_k=args.top_k,
            dedupe=args.dedupe,
            collection=args.collection or "",
            filter=_filter_arg(args.filter),
        )
        _print_steps(steps, args.json)
    return 0


def cmd_traverse(args: argparse.Namespace) -> int:
    """Stream the hits along origin + t * direction."""
    from assetsearch_client import SearchClient

    settings = _settings(args)
    given = sum(x is not None for x in (args.direction, args.texts, args.pc))
    if given != 1:
        print(
            "error: give exactly one of --direction NAME, --texts FROM TO or --pc K",
            file=sys.stderr,
        )
        return 2
    with SearchClient(settings.server) as client:
        steps = client.traverse(
            _query_arg(args.origin),
            named=args.direction,
            texts=tuple(args.texts) if args.texts else None,
            principal_component=args.pc,
            step=args.step,
            steps=args.steps,
            top_k=args.top_k,
            dedupe=args.dedupe,
            collection=args.collection or "",
            filter=_filter_arg(args.filter),
        )
        _print_steps(steps, args.json)
    return 0


def cmd_variations(args: argparse.Namespace) -> int:
    """Print assets a small, distinct move away from a seed asset or query."""
    from assetsearch_client import SearchClient

    settings = _settings(args)
    seed: Any = int(args.seed) if args.seed.isdigit() else _query_arg(args.seed)
    with SearchClient(settings.server) as client:
        response = client.variations(
            seed,
            n=args.n,
            radius=args.radius,
            min_distance=args.min_distance,
            diversity=args.diversity,
            collection=args.collection or "",
        )
    for rank, hit in enumerate(response.hits, 1):
        if args.json:
            print(json.dumps(_hit_dict(rank, hit)))
        else:
            print(f"{rank:>3}  cos {hit.score:6.4f}  #{hit.asset_id:<7} {hit.uri}")
    if not args.json:
        band = f"{response.min_distance:.3g} to {response.radius:.3g}"
        hint = "; widen --radius for more" if len(response.hits) < args.n else ""
        print(
            f"({len(response.hits)} variations at cosine distance {band} from the seed; "
            f"{response.in_band} assets in that band{hint})",
            file=sys.stderr,
        )
    return 0


def _example(text: str) -> Any:
    """A direction example: asset:ID, image:PATH, or a plain text."""
    from assetsearch_client import terms

    if text.startswith("asset:") and text[6:].isdigit():
        return terms.Asset(int(text[6:]))
    if text.startswith("image:"):
        return terms.Image(_read_image(text[6:]))
    return terms.Text(text)


def _direction_dict(d: Any) -> dict[str, Any]:
    return {
        "name": d.name,
        "norm": _round(d.norm),
        "positive": list(d.positive),
        "negative": list(d.negative),
        "orthogonal_to": list(d.orthogonal_to),
        "cosines": {k: _round(v) for k, v in sorted(d.cosines.items())},
    }


def cmd_direction(args: argparse.Namespace) -> int:
    """Create, list, show or delete named directions."""
    from assetsearch_client import SearchClient

    settings = _settings(args)
    collection = args.collection or ""
    with SearchClient(settings.server) as client:
        if args.direction_command == "create":
            made = client.create_direction(
                args.name,
                [_example(e) for e in args.positive or []],
                [_example(e) for e in args.negative or []],
                args.orthogonal_to or [],
                collection=collection,
            )
            shown = [made]
        elif args.direction_command == "list":
            shown = client.list_directions(collection)
        elif args.direction_command == "show":
            shown = [client.get_direction(args.name, collection)]
        else:
            client.delete_direction(args.name, collection)
            print(
                json.dumps({"deleted": args.name})
                if args.json
                else f"deleted direction {args.name}"
            )
            return 0
    for d in shown:
        if args.json:
            print(json.dumps(_direction_dict(d)))
        else:
            entangled = (
                ", ".join(f"{k} {v:+.2f}" for k, v in sorted(d.cosines.items()))
                or "no other directions"
            )
            print(
                f"{d.name}: norm {d.norm:.3f}; +{len(d.positive)} / -{len(d.negative)} examples; "
                f"cosines: {entangled}"
            )
    return 0


MAX_THUMBNAILS = 3000


def cmd_map(args: argparse.Namespace) -> int:
    """Render a 2-D map of a collection to HTML (interactive) or PNG."""
    from urllib.parse import unquote, urlparse

    import numpy as np
    from assetsearch_client import SearchClient

    from latent.query.projection import MapText, render_html, render_png, thumbnail_data_uri

    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".png"):
        print("error: --out must end in .html or .png", file=sys.stderr)
        return 2
    settings = _settings(args)
    path = (_query_arg(args.path[0]), _query_arg(args.path[1])) if args.path else None
    with SearchClient(settings.server) as client:
        response = client.project(
            method=args.method,
            max_points=args.max_points,
            color_by=args.color_by or "",
            path=path,
            path_steps=args.steps,
            collection=args.collection or "",
        )
    points = np.array([[p.x, p.y] for p in response.points], dtype=np.float32)
    colors = (
        [p.color or "(none)" for p in response.points] if args.color_by else ["asset"] * len(points)
    )
    line = (
        np.array([[p.x, p.y] for p in response.path], dtype=np.float32) if response.path else None
    )
    name = args.collection or settings.collection
    axis = "PC" if response.method == "pca" else response.method.upper()
    text = MapText(
        title=f"{name}: {len(points)} of {response.total} assets ({response.method})",
        legend_title=args.color_by or "",
        path_from=args.path[0] if args.path else "",
        path_to=args.path[1] if args.path else "",
        x_axis=f"{axis} 1",
        y_axis=f"{axis} 2",
    )
    if out.suffix.lower() == ".png":
        render_png(points, colors, out, path=line, text=text)
    else:
        files = [
            unquote(urlparse(p.uri).path) if p.uri.startswith("file://") else ""
            for p in response.points
        ]
        thumbs = [
            thumbnail_data_uri(Path(f)) if f and i < MAX_THUMBNAILS else None
            for i, f in enumerate(files)
        ]
        labels = [
            f"#{p.asset_id} {Path(files[i] or p.uri).name} {p.color}"
            for i, p in enumerate(response.points)
        ]
        render_html(points, labels, colors, out, thumbnails=thumbs, path=line, text=text)
    print(f"wrote {out} ({len(points)} points, path of {len(response.path)} steps)")
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


def cmd_collection(args: argparse.Namespace) -> int:
    """Set or clear a collection's index override (the servers rebuild in the background)."""
    from latent.index.policy import IndexSpec

    if args.clear == bool(args.type):
        raise ValueError("give --type KIND (with its parameters) or --clear")
    options = None
    if args.type:
        params = ("nlist", "nprobe", "m", "ef_construction", "ef_search", "pq_m")
        given = {k: getattr(args, k) for k in params if getattr(args, k) is not None}
        spec = IndexSpec.from_dict({"kind": args.type, **given})
        options = {"kind": spec.kind, **spec.params()}
    _catalog(_settings(args)).set_index_options(args.name, options)
    if options is None:
        print(f"collection {args.name}: index chosen by size and memory budget again")
    else:
        print(f"collection {args.name}: index {spec.describe()}; servers rebuild in the background")
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
    from latent.demo.world import generate_library

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


def _client_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--collection", help="collection (default: the server's default)")
    p.add_argument(
        "--server", help="HOST:PORT of the server (ASSETSEARCH_SERVER, default 127.0.0.1:50051)"
    )
    p.add_argument("--json", action="store_true", help="print JSON Lines")


FILTER_HELP = (
    "only assets matching FILTER, e.g. 'media=image and size>=10KB and mtime>=2024-01-01 "
    "and path^=./cats and meta.tag in (red, blue)'; repeatable (all must hold)"
)


def _filter_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--filter", action="append", metavar="FILTER", help=FILTER_HELP)


def _walk_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=5, help="number of steps (default 5)")
    p.add_argument("--top-k", type=int, default=5, help="hits per step (default 5)")
    p.add_argument("--dedupe", action="store_true", help="show each asset at one step only")
    _filter_flag(p)
    _client_flags(p)


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
        "--metadata",
        type=Path,
        metavar="FILE.jsonl",
        help='user metadata: JSON Lines with a "file" path per line (e.g. the demo labels.jsonl)',
    )
    p.add_argument(
        "--threads", type=int, help="torch/FAISS threads (ASSETSEARCH_THREADS; 0: default)"
    )
    _common(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser(
        "import-vectors", help="import vectors computed elsewhere (.npy) into a collection"
    )
    p.add_argument("vectors", metavar="FILE.npy", help="float array of shape (rows, dim)")
    p.add_argument(
        "--ids",
        required=True,
        metavar="IDS_FILE",
        help="one id per row: a text file (one per line) or a 1-D .npy of integers or strings",
    )
    p.add_argument(
        "--collection", help="collection name (ASSETSEARCH_COLLECTION, default 'default')"
    )
    p.add_argument(
        "--model",
        help="spec of the model that made the vectors, for a new collection "
        "(default external:unknown: vector and asset queries only)",
    )
    p.add_argument(
        "--metadata",
        metavar="FILE.jsonl",
        help='user metadata: JSON Lines with an "id" per line; other ids keep theirs',
    )
    p.add_argument(
        "--batch-rows", type=int, default=20_000, help="rows per transaction (default 20000)"
    )
    _common(p)
    p.set_defaults(func=cmd_import_vectors)

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
    p.add_argument(
        "--explain", action="store_true", help="show each hit's cosine to each term and the density"
    )
    p.add_argument(
        "--diversity", type=float, default=0.0, help="MMR diversity in [0, 1] (default 0)"
    )
    p.add_argument(
        "--dedup", type=float, default=0.0, metavar="T", help="collapse hits with cosine >= T"
    )
    p.add_argument(
        "--snap", action="store_true", help="move a query in a sparse region to its neighbours"
    )
    _filter_flag(p)
    p.add_argument(
        "--page-token",
        metavar="TOKEN",
        help="continue after an earlier page of this same search (printed as 'more: ...')",
    )
    p.add_argument(
        "--pages", type=int, default=1, help="pages of --top-k hits to fetch (0: all; default 1)"
    )
    p.set_defaults(func=cmd_search)

    walk_help = "expression, e.g. asset:42 or '\"red circle\"' or image:a.jpg"
    p = sub.add_parser("interpolate", help="walk from one query to another, hits per step")
    p.add_argument("source", metavar="EXPR_A", help=walk_help)
    p.add_argument("target", metavar="EXPR_B", help=walk_help)
    p.add_argument("--method", choices=("slerp", "lerp"), default="slerp")
    _walk_flags(p)
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("traverse", help="walk from a query along a direction, hits per step")
    p.add_argument("origin", metavar="EXPR", help=walk_help)
    p.add_argument("--direction", metavar="NAME", help="a named direction")
    p.add_argument(
        "--texts", nargs=2, metavar=("FROM", "TO"), help="direction embed(TO) - embed(FROM)"
    )
    p.add_argument(
        "--pc", type=int, metavar="K", help="the K-th principal component of the collection"
    )
    p.add_argument("--step", type=float, default=0.25, help="distance between steps (default 0.25)")
    _walk_flags(p)
    p.set_defaults(func=cmd_traverse)

    p = sub.add_parser(
        "variations", help="assets a small, distinct move away from an asset (or a query)"
    )
    p.add_argument("seed", metavar="ASSET_ID", help="an asset id, or an expression: " + walk_help)
    p.add_argument(
        "--radius",
        type=float,
        help="largest cosine distance (1 - cos) from the seed, in (0, 2] "
        "(default: 1.5x the collection's typical neighbour distance)",
    )
    p.add_argument("-n", type=int, default=8, help="number of variations (default 8)")
    p.add_argument(
        "--min-distance",
        type=float,
        help="closer assets are near-duplicates and left out (default 0.02)",
    )
    p.add_argument(
        "--diversity",
        type=float,
        help="0 = nearest in the band, 1 = most distinct directions (default 0.3)",
    )
    _client_flags(p)
    p.set_defaults(func=cmd_variations)

    p = sub.add_parser("map", help="a 2-D map of a collection as interactive HTML or PNG")
    p.add_argument("--out", required=True, metavar="map.html|map.png", help="output file")
    p.add_argument(
        "--color-by", metavar="FIELD", help="metadata field (dotted: objects.0.color) or media_type"
    )
    p.add_argument(
        "--path", nargs=2, metavar=("EXPR_A", "EXPR_B"), help="draw an interpolation path"
    )
    p.add_argument("--steps", type=int, default=8, help="steps of the path (default 8)")
    p.add_argument(
        "--method", choices=("pca", "umap"), default="pca", help="projection (umap if installed)"
    )
    p.add_argument("--max-points", type=int, default=5000, help="sample at most this many assets")
    _client_flags(p)
    p.set_defaults(func=cmd_map)

    p = sub.add_parser("direction", help="named directions: create, list, show, delete")
    dsub = p.add_subparsers(dest="direction_command", required=True, metavar="ACTION")
    create = dsub.add_parser("create", help="mean(positive) - mean(negative)")
    create.add_argument("name")
    create.add_argument("--positive", nargs="+", metavar="EX", help="texts, asset:ID or image:PATH")
    create.add_argument("--negative", nargs="+", metavar="EX", help="texts, asset:ID or image:PATH")
    create.add_argument(
        "--orthogonal-to", nargs="+", metavar="NAME", help="keep these directions unchanged"
    )
    dsub.add_parser("list", help="every direction with its entanglement report")
    for action in ("show", "delete"):
        dsub.add_parser(action, help=f"{action} one direction").add_argument("name")
    for action_parser in dsub.choices.values():
        _client_flags(action_parser)
    p.set_defaults(func=cmd_direction)

    p = sub.add_parser("status", help="collections, models and asset counts (reads the catalog)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _common(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("collection", help="collection settings: its index type")
    csub = p.add_subparsers(dest="collection_command", required=True, metavar="ACTION")
    ix = csub.add_parser(
        "set-index", help="override the index type and parameters (or --clear the override)"
    )
    ix.add_argument("name", help="collection name")
    ix.add_argument(
        "--type", choices=("flat", "hnsw", "ivf-flat", "ivf-sq8", "ivf-pq"), help="index type"
    )
    for flag, what in (
        ("--nlist", "IVF lists"),
        ("--nprobe", "IVF lists probed per query (default: tuned for recall@10 >= 0.97)"),
        ("--m", "HNSW links per node (default 32)"),
        ("--ef-construction", "HNSW build beam (default 80)"),
        ("--ef-search", "HNSW search beam (default: tuned)"),
        ("--pq-m", "PQ bytes per vector; must divide the dimension (default dim/4)"),
    ):
        ix.add_argument(flag, type=int, help=what)
    ix.add_argument("--clear", action="store_true", help="let size and memory budget decide")
    _common(ix)
    p.set_defaults(func=cmd_collection)

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
        if exc.from_server:
            print(f"error: {exc.status.name}: {exc}", file=sys.stderr)
            return 1
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
