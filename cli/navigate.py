"""Walks through the latent space: ``interpolate``, ``traverse`` and ``variations``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cli.inputs import filter_arg, query_arg
from cli.options import client_flags, connect, filter_flag, settings_from
from cli.output import hit_dict, print_steps, usage_error

WALK_HELP = "expression, e.g. asset:42 or '\"red circle\"' or image:a.jpg"


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the ``interpolate``, ``traverse`` and ``variations`` commands."""
    _add_interpolate(commands)
    _add_traverse(commands)
    _add_variations(commands)


def _walk_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=5, help="number of steps (default 5)")
    p.add_argument("--top-k", type=int, default=5, help="hits per step (default 5)")
    p.add_argument("--dedupe", action="store_true", help="show each asset at one step only")
    filter_flag(p)
    client_flags(p)


def _add_interpolate(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("interpolate", help="walk from one query to another, hits per step")
    p.add_argument("source", metavar="EXPR_A", help=WALK_HELP)
    p.add_argument("target", metavar="EXPR_B", help=WALK_HELP)
    p.add_argument("--method", choices=("slerp", "lerp"), default="slerp")
    _walk_flags(p)
    p.set_defaults(func=interpolate)


def _add_traverse(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("traverse", help="walk from a query along a direction, hits per step")
    p.add_argument("origin", metavar="EXPR", help=WALK_HELP)
    p.add_argument("--direction", metavar="NAME", help="a named direction")
    p.add_argument(
        "--texts", nargs=2, metavar=("FROM", "TO"), help="direction embed(TO) - embed(FROM)"
    )
    p.add_argument(
        "--pc", type=int, metavar="K", help="the K-th principal component of the collection"
    )
    p.add_argument("--step", type=float, default=0.25, help="distance between steps (default 0.25)")
    _walk_flags(p)
    p.set_defaults(func=traverse)


def _add_variations(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "variations", help="assets a small, distinct move away from an asset (or a query)"
    )
    p.add_argument("seed", metavar="ASSET_ID", help="an asset id, or an expression: " + WALK_HELP)
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
    client_flags(p)
    p.set_defaults(func=variations)


def interpolate(args: argparse.Namespace) -> int:
    """Stream the hits along a path between two queries."""
    settings = settings_from(args)
    with connect(settings) as client:
        steps = client.interpolate(
            query_arg(args.source),
            query_arg(args.target),
            steps=args.steps,
            method=args.method,
            top_k=args.top_k,
            dedupe=args.dedupe,
            collection=args.collection or "",
            filter=filter_arg(args.filter),
        )
        print_steps(steps, args.json)
    return 0


def traverse(args: argparse.Namespace) -> int:
    """Stream the hits along origin + t * direction."""
    settings = settings_from(args)
    if sum(x is not None for x in (args.direction, args.texts, args.pc)) != 1:
        return usage_error("give exactly one of --direction NAME, --texts FROM TO or --pc K")
    with connect(settings) as client:
        steps = client.traverse(
            query_arg(args.origin),
            named=args.direction,
            texts=tuple(args.texts) if args.texts else None,
            principal_component=args.pc,
            step=args.step,
            steps=args.steps,
            top_k=args.top_k,
            dedupe=args.dedupe,
            collection=args.collection or "",
            filter=filter_arg(args.filter),
        )
        print_steps(steps, args.json)
    return 0


def variations(args: argparse.Namespace) -> int:
    """Print assets a small, distinct move away from a seed asset or query."""
    settings = settings_from(args)
    seed: Any = int(args.seed) if args.seed.isdigit() else query_arg(args.seed)
    with connect(settings) as client:
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
            print(json.dumps(hit_dict(rank, hit)))
        else:
            print(f"{rank:>3}  cos {hit.score:6.4f}  #{hit.asset_id:<7} {hit.uri}")
    if not args.json:
        _print_band(response, wanted=args.n)
    return 0


def _print_band(response: Any, wanted: int) -> None:
    """The summary on stderr: the distance band and how many assets it held."""
    band = f"{response.min_distance:.3g} to {response.radius:.3g}"
    hint = "; widen --radius for more" if len(response.hits) < wanted else ""
    print(
        f"({len(response.hits)} variations at cosine distance {band} from the seed; "
        f"{response.in_band} assets in that band{hint})",
        file=sys.stderr,
    )
