"""``assetsearch direction``: create, list, show and delete named directions."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from typing import Any

from cli.inputs import example_arg
from cli.options import client_flags, connect, settings_from
from cli.output import rounded

EXAMPLE_HELP = "texts, asset:ID or image:PATH"


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the ``direction`` command and its actions."""
    p = commands.add_parser("direction", help="named directions: create, list, show, delete")
    actions = p.add_subparsers(dest="direction_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="mean(positive) - mean(negative)")
    create.add_argument("name")
    create.add_argument("--positive", nargs="+", metavar="EX", help=EXAMPLE_HELP)
    create.add_argument("--negative", nargs="+", metavar="EX", help=EXAMPLE_HELP)
    create.add_argument(
        "--orthogonal-to", nargs="+", metavar="NAME", help="keep these directions unchanged"
    )
    create.set_defaults(func=create_direction)
    listing = actions.add_parser("list", help="every direction with its entanglement report")
    listing.set_defaults(func=list_directions)
    for action, func in (("show", show_direction), ("delete", delete_direction)):
        one = actions.add_parser(action, help=f"{action} one direction")
        one.add_argument("name")
        one.set_defaults(func=func)
    for action_parser in actions.choices.values():
        client_flags(action_parser)


def create_direction(args: argparse.Namespace) -> int:
    """Create a direction from positive and negative examples and print it."""
    with connect(settings_from(args)) as client:
        made = client.create_direction(
            args.name,
            [example_arg(e) for e in args.positive or []],
            [example_arg(e) for e in args.negative or []],
            args.orthogonal_to or [],
            collection=args.collection or "",
        )
    _print_directions([made], args.json)
    return 0


def list_directions(args: argparse.Namespace) -> int:
    """Print every direction of the collection."""
    with connect(settings_from(args)) as client:
        shown = client.list_directions(args.collection or "")
    _print_directions(shown, args.json)
    return 0


def show_direction(args: argparse.Namespace) -> int:
    """Print one direction."""
    with connect(settings_from(args)) as client:
        shown = client.get_direction(args.name, args.collection or "")
    _print_directions([shown], args.json)
    return 0


def delete_direction(args: argparse.Namespace) -> int:
    """Delete one direction."""
    with connect(settings_from(args)) as client:
        client.delete_direction(args.name, args.collection or "")
    print(json.dumps({"deleted": args.name}) if args.json else f"deleted direction {args.name}")
    return 0


def _print_directions(directions: Iterable[Any], as_json: bool) -> None:
    for d in directions:
        print(json.dumps(_direction_dict(d)) if as_json else _direction_line(d))


def _direction_dict(d: Any) -> dict[str, Any]:
    return {
        "name": d.name,
        "norm": rounded(d.norm),
        "positive": list(d.positive),
        "negative": list(d.negative),
        "orthogonal_to": list(d.orthogonal_to),
        "cosines": {k: rounded(v) for k, v in sorted(d.cosines.items())},
    }


def _direction_line(d: Any) -> str:
    entangled = (
        ", ".join(f"{k} {v:+.2f}" for k, v in sorted(d.cosines.items())) or "no other directions"
    )
    return (
        f"{d.name}: norm {d.norm:.3f}; +{len(d.positive)} / -{len(d.negative)} examples; "
        f"cosines: {entangled}"
    )
