"""The ``assetsearch`` console script: one parser, its commands from one module per group."""

from __future__ import annotations

import argparse
import logging
import sys

from assetsearch_client import AssetSearchError

from cli import (
    admin,
    demo,
    directions,
    health,
    indexing,
    jobs,
    keys,
    library,
    maps,
    navigate,
    search,
    serve,
)

# In the order `assetsearch --help` lists them.
COMMAND_GROUPS = (
    indexing,
    library,
    jobs,
    serve,
    health,
    search,
    navigate,
    maps,
    directions,
    admin,
    keys,
    demo,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="assetsearch",
        description="Semantic search over image libraries (open_clip + FAISS + SQL, gRPC).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``assetsearch`` console script.

    Returns:
        The exit status: 0 success, 1 the server refused the call, 2 a usage or input error.
    """
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
