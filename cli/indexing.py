"""The write path from the command line: ``index`` a library, ``import-vectors`` from files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.options import catalog_flags, open_catalog, setting_flag, settings_from
from cli.output import usage_error


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the ``index`` and ``import-vectors`` commands."""
    _add_index(commands)
    _add_import_vectors(commands)


def _add_index(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("index", help="index new and changed files, mark vanished ones deleted")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders, scanned recursively")
    setting_flag(p, "collection")
    setting_flag(p, "model")
    setting_flag(p, "batch_size")
    p.add_argument(
        "--metadata",
        type=Path,
        metavar="FILE.jsonl",
        help='user metadata: JSON Lines with a "file" path per line (e.g. the demo labels.jsonl)',
    )
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="decode failed files again even when unchanged (see `status --failed`)",
    )
    setting_flag(p, "max_file_bytes")
    setting_flag(p, "threads")
    catalog_flags(p)
    p.set_defaults(func=index)


def _add_import_vectors(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "import-vectors", help="import vectors computed elsewhere (.npy) into a collection"
    )
    p.add_argument("vectors", metavar="FILE.npy", help="float array of shape (rows, dim)")
    p.add_argument(
        "--ids",
        required=True,
        metavar="IDS_FILE",
        help="one id per row: a text file (one per line) or a 1-D .npy of integers or strings",
    )
    setting_flag(p, "collection")
    # Not the `model` setting: it names the model that made the vectors, not one to load.
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
    catalog_flags(p)
    p.set_defaults(func=import_vectors)


def index(args: argparse.Namespace) -> int:
    """Index library paths into a collection."""
    from tqdm import tqdm

    from indexer.metadata import load_metadata
    from indexer.pipeline import Indexer
    from latent.models.encoders import load_encoder

    settings = settings_from(args)
    catalog = open_catalog(settings)
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
        max_file_bytes=int(settings.max_file_bytes),
        exclude=[settings.data_dir],  # the catalog and snapshots are never library content
        retry_failed=args.retry_failed,
    )
    try:
        summary = indexer.run(args.paths, model_explicit=args.model is not None)
    finally:
        bar.close()
    for path, reason in summary.failures[:20]:
        print(f"failed: {path}: {reason}", file=sys.stderr)
    print(summary)
    return 0


def import_vectors(args: argparse.Namespace) -> int:
    """Import vectors computed elsewhere into a collection of the catalog."""
    from tqdm import tqdm

    from indexer.vector_files import import_files

    if args.batch_rows < 1:
        return usage_error("--batch-rows must be at least 1")
    settings = settings_from(args)
    bar = tqdm(unit="vec", disable=not sys.stderr.isatty(), file=sys.stderr)
    try:
        summary = import_files(
            open_catalog(settings),
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
