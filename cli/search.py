"""``assetsearch search``: query a running server and print the hits, page by page."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any

from cli.inputs import filter_arg, query_arg, read_image
from cli.options import client_flags, connect, filter_flag, settings_from
from cli.output import hit_dict, rounded, usage_error


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the ``search`` command."""
    p = commands.add_parser("search", help="search a running server")
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
    client_flags(p, json_help="print JSON Lines, one object per hit")
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
    filter_flag(p)
    p.add_argument(
        "--page-token",
        metavar="TOKEN",
        help="continue after an earlier page of this same search (printed as 'more: ...')",
    )
    p.add_argument(
        "--pages", type=int, default=1, help="pages of --top-k hits to fetch (0: all; default 1)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Search a running server and print the hits."""
    settings = settings_from(args)
    query = _query(args)
    if len(query) != 1:
        return usage_error("give exactly one of TEXT, --image, --like, --vector-file or --expr")
    if args.pages < 0:
        return usage_error("--pages must be 0 (all) or more")
    where = filter_arg(args.filter)
    shown, last = 0, None
    with connect(settings) as client:
        for page, response in enumerate(_pages(client, args, query, where)):
            _print_page(response, args.json, explain=page == 0)
            shown, last = shown + len(response.hits), response
    if last is not None:
        _print_end(last, shown, args.json)
    return 0


def _query(args: argparse.Namespace) -> dict[str, Any]:
    """The query arguments given (exactly one is valid), as `SearchClient.search` keywords."""
    query: dict[str, Any] = {}
    if args.text is not None:
        query["text"] = args.text
    if args.image is not None:
        query["image"] = read_image(args.image)
    if args.like is not None:
        query["asset_id"] = args.like
    if args.vector_file is not None:
        import numpy as np

        query["vector"] = np.load(args.vector_file, allow_pickle=False)
    if args.expr is not None:
        query["terms"] = query_arg(args.expr)
    return query


def _pages(client: Any, args: argparse.Namespace, query: dict[str, Any], where: Any) -> Iterator:
    """Up to --pages responses (0: all), each continuing after the one before."""
    token = args.page_token or ""
    for _ in range(args.pages or sys.maxsize):
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
        yield response
        token = response.next_page_token
        if not token:
            return


def _print_page(response: Any, as_json: bool, explain: bool) -> None:
    explanation = response.explanation if response.HasField("explanation") else None
    for rank, hit in enumerate(response.hits, response.offset + 1):
        if as_json:
            row = hit_dict(rank, hit)
            if explanation is not None:
                cosines = map(rounded, hit.term_cosines)
                row["term_cosines"] = dict(zip(explanation.terms, cosines, strict=True))
            print(json.dumps(row))
        else:
            print(f"{rank:>3}  {hit.score:7.4f}  #{hit.asset_id:<7} {hit.media_type:<6} {hit.uri}")
    if explanation is not None and explain:
        (_print_explanation_json if as_json else _print_explanation)(explanation)
    if response.collection_changed:
        print(
            "warning: the collection changed since the page token was issued; a hit may "
            "repeat or be missed (search again without --page-token for an exact walk)",
            file=sys.stderr,
        )


def _print_end(response: Any, shown: int, as_json: bool) -> None:
    # stdout stays one hit per line (JSON Lines with --json); the page token goes to stderr.
    if not as_json:
        print(
            f"({shown} hits from {response.collection}, {response.index_size} vectors, "
            f"{response.took_ms:.1f} ms)",
            file=sys.stderr,
        )
    if response.next_page_token:
        print(f"more: --page-token {response.next_page_token}", file=sys.stderr)


def _print_explanation_json(explanation: Any) -> None:
    out: dict[str, Any] = {"terms": list(explanation.terms)}
    if explanation.HasField("density"):
        density = explanation.density
        out["density"] = {
            "knn_similarity": rounded(density.knn_similarity),
            "typical_similarity": rounded(density.typical_similarity),
            "ratio": rounded(density.ratio),
            "is_hole": density.is_hole,
            "snapped": density.snapped,
        }
    print(json.dumps({"explanation": out}))


def _print_explanation(explanation: Any) -> None:
    print("terms: " + "  ".join(explanation.terms), file=sys.stderr)
    if explanation.HasField("density"):
        density = explanation.density
        verdict = "a hole (sparse region)" if density.is_hole else "a populated region"
        snapped = "; snapped to its neighbours" if density.snapped else ""
        print(f"density: {density.ratio:.2f} of typical ({verdict}{snapped})", file=sys.stderr)
