"""Catalog administration: ``status``, ``collection set-index`` and ``db`` migrations."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cli.options import catalog_flags, open_catalog, settings_from

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
    p.add_argument("--json", action="store_true", help="print one JSON object")
    catalog_flags(p)
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
    """Print each collection's model, dimension and counts by state."""
    settings = settings_from(args)
    collections = open_catalog(settings).collections()
    if args.json:
        database = safe_url(settings.resolved_database_url())
        print(json.dumps({"database": database, "collections": _collection_dicts(collections)}))
        return 0
    if not collections:
        print("no collections yet: run `assetsearch index PATH`")
    for c in collections:
        counts = ", ".join(f"{k} {v}" for k, v in c.counts.items())
        print(f"{c.name}: {c.model_spec} ({c.dim}-d, {c.metric}): {counts}")
    return 0


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
