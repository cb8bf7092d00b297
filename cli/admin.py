"""Catalog administration: ``status``, ``collection set-index`` and ``db`` migrations."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from cli.health import check
from cli.options import catalog_flags, connect, connection_flags, open_catalog, settings_from
from cli.output import usage_error

if TYPE_CHECKING:
    from latent.catalog import AssetRecord, Catalog
    from latent.settings import Settings

FAILED_LIMIT = 100  # failures `status --failed` lists unless --limit says otherwise
INDEX_KINDS = ("flat", "hnsw", "ivf-flat", "ivf-sq8", "ivf-pq")
INDEX_PARAMS = (
    ("nlist", "IVF lists"),
    ("nprobe", "IVF lists probed per query (default: tuned for recall@10 >= 0.97)"),
    ("m", "HNSW links per node (default 32)"),
    ("ef_construction", "HNSW build beam (default 80)"),
    ("ef_search", "HNSW search beam (default: tuned)"),
    ("pq_m", "PQ bytes per vector; must divide the dimension (default dim/4)"),
)


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the ``status``, ``collection`` and ``db`` commands."""
    p = commands.add_parser(
        "status", help="collections, models and asset counts (reads the catalog)"
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (with --failed: one object per failed asset)",
    )
    p.add_argument(
        "--failed", action="store_true", help="list failed assets with reasons, newest first"
    )
    p.add_argument("--collection", help="with --failed: only this collection's (default: all)")
    p.add_argument(
        "--health-timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="with --server: seconds to wait for the server's answers (default 5)",
    )
    p.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help=f"with --failed: list at most N (default {FAILED_LIMIT})",
    )
    catalog_flags(p)
    connection_flags(p)  # --server: also the server's health and each collection's lag
    p.set_defaults(func=status)
    _add_collection(commands)
    _add_db(commands)


def _add_collection(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("collection", help="collection settings: its index type")
    actions = p.add_subparsers(dest="collection_command", required=True, metavar="ACTION")
    ix = actions.add_parser(
        "set-index", help="override the index type and parameters (or --clear the override)"
    )
    ix.add_argument("name", help="collection name")
    ix.add_argument("--type", choices=INDEX_KINDS, help="index type")
    for param, what in INDEX_PARAMS:
        ix.add_argument("--" + param.replace("_", "-"), type=int, help=what)
    ix.add_argument("--clear", action="store_true", help="let size and memory budget decide")
    catalog_flags(ix)
    p.set_defaults(func=set_index)


def _add_db(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("db", help="catalog schema migrations")
    actions = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = actions.add_parser("upgrade", help="migrate to the newest revision (or --revision)")
    up.add_argument("--revision", default="head")
    down = actions.add_parser(
        "downgrade", help="migrate down to --revision (base drops every table)"
    )
    down.add_argument("--revision", required=True)
    current = actions.add_parser("current", help="print the current revision")
    for action_parser in (up, down, current):
        catalog_flags(action_parser)
    p.set_defaults(func=migrate)


def status(args: argparse.Namespace) -> int:
    """Print each collection's model, dimension and counts by state (or its failures)."""
    settings = settings_from(args)
    if args.failed:
        return failures(open_catalog(settings), args)
    if args.collection is not None or args.limit is not None:
        return usage_error("--collection and --limit go with --failed")
    catalog = open_catalog(settings)
    try:
        collections = catalog.collections()
    finally:
        catalog.close()
    served = server_status(settings, args.health_timeout) if args.server else None
    if args.json:
        database = safe_url(settings.resolved_database_url())
        out = {"database": database, "collections": _collection_dicts(collections)}
        if served is not None:
            out["server"] = served
        print(json.dumps(out))
    else:
        if not collections:
            print("no collections yet: run `assetsearch index PATH`")
        for c in collections:
            counts = ", ".join(f"{k} {v}" for k, v in c.counts.items())
            print(f"{c.name}: {c.model_spec} ({c.dim}-d, {c.metric}): {counts}")
        if served is not None:
            _print_server(served)
    return 0 if served is None or served["health"] == "SERVING" else 1


def server_status(settings: Settings, timeout: float) -> dict[str, Any]:
    """A server's health and, per collection, its served index and lag behind the catalog.

    Returns:
        ``{"address", "health", "error"?, "collections": {name: {index_size, index_seq,
        head_seq, lag}}}``; health is a grpc.health.v1 status word, or UNREACHABLE.
    """
    from assetsearch_client import AssetSearchError

    out: dict[str, Any] = {"address": settings.server, "collections": {}}
    out["health"], error = check(settings, timeout=timeout)
    if error:
        out["error"] = error
        return out
    try:
        with connect(settings, timeout=timeout) as client:
            listed = client.list_collections()
    except AssetSearchError as exc:
        out["error"] = f"{exc.status.name}: {exc}" if exc.from_server else str(exc)
        return out
    for c in listed:
        out["collections"][c.name] = {
            "index_size": c.index_size,
            "index_seq": c.index_seq,
            "head_seq": c.head_seq,
            "lag": max(c.head_seq - c.index_seq, 0),
        }
    return out


def _print_server(served: dict[str, Any]) -> None:
    line = f"server {served['address']}: {served['health']}"
    print(line + (f" ({served['error']})" if "error" in served else ""))
    for name, c in served["collections"].items():
        print(
            f"  {name}: index {c['index_size']} vectors at seq {c['index_seq']}, "
            f"catalog at seq {c['head_seq']}: lag {c['lag']}"
        )


def failures(catalog: Catalog, args: argparse.Namespace) -> int:
    """Print the failed assets with their reasons, newest first, and how many more there are.

    Args:
        catalog: The catalog to read.
        args: The ``status`` arguments: ``collection``, ``limit`` and ``json``.

    Returns:
        0, or 2 when ``--limit`` is below 1.

    Raises:
        NotFound: ``--collection`` names no collection.
    """
    limit = FAILED_LIMIT if args.limit is None else args.limit
    if limit < 1:
        return usage_error("--limit must be at least 1")
    if args.collection is None:
        collection_id, total = None, sum(c.counts["failed"] for c in catalog.collections())
    else:
        info = catalog.collection(args.collection)
        collection_id, total = info.id, info.counts["failed"]
    shown = catalog.failed_assets(collection_id, limit)
    for a in shown:
        if args.json:
            print(json.dumps(_failure_dict(a)))
        else:
            print(f"{_shown_uri(a.uri)}: {a.error or 'unknown error'}")
    more = total - len(shown)
    # With --json the count goes to stderr, so stdout stays one JSON object per asset.
    print(
        f"{total} failed" + (f", {more} more not shown (--limit)" if more > 0 else ""),
        file=sys.stderr if args.json else sys.stdout,
    )
    return 0


def _failure_dict(a: AssetRecord) -> dict[str, Any]:
    return {
        "asset_id": a.id,
        "collection": a.collection,
        "uri": a.uri,
        "error": a.error,
        "updated_at": a.updated_at.isoformat() if a.updated_at else None,
    }


def _shown_uri(uri: str) -> str:
    """A file uri as the path a person typed; other uris (imported ids) as they are."""
    from indexer.scan import path_from_uri  # the scan's inverse; loaded only when listing

    return str(path_from_uri(uri)) if uri.startswith("file:") else uri


def _collection_dicts(collections: list[Any]) -> dict[str, dict[str, Any]]:
    return {
        c.name: {"model_spec": c.model_spec, "dim": c.dim, "metric": c.metric, **c.counts}
        for c in collections
    }


def set_index(args: argparse.Namespace) -> int:
    """Set or clear a collection's index override (the servers rebuild in the background)."""
    from latent.index.policy import IndexSpec

    if args.clear == bool(args.type):
        raise ValueError("give --type KIND (with its parameters) or --clear")
    spec = None
    if args.type:
        given = {k: getattr(args, k) for k, _ in INDEX_PARAMS if getattr(args, k) is not None}
        spec = IndexSpec.from_dict({"kind": args.type, **given})
    options = None if spec is None else {"kind": spec.kind, **spec.params()}
    open_catalog(settings_from(args)).set_index_options(args.name, options)
    if spec is None:
        print(f"collection {args.name}: index chosen by size and memory budget again")
    else:
        print(f"collection {args.name}: index {spec.describe()}; servers rebuild in the background")
    return 0


def safe_url(url: str) -> str:
    """A catalog URL fit to print: its password hidden."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def migrate(args: argparse.Namespace) -> int:
    """Migrate the catalog schema up or down, or print its revision."""
    from latent.catalog import Catalog

    settings = settings_from(args)
    catalog = Catalog(settings.resolved_database_url(), migrate=False)
    if args.db_command == "upgrade":
        catalog.upgrade(args.revision)
    elif args.db_command == "downgrade":
        catalog.downgrade(args.revision)
    print(f"catalog {safe_url(catalog.url)} at revision {catalog.schema_revision()}")
    return 0
