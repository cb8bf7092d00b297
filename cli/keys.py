"""``assetsearch keys``: create, list and revoke the API keys servers check (in the catalog)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from cli.options import catalog_flags, open_catalog, settings_from

if TYPE_CHECKING:
    from latent.catalog.keys import ApiKeyRecord

SCOPES = ("read", "write", "admin")  # as latent.catalog.keys (not imported: SQL loads late)
SCOPE_HELP = (
    "read: search and read; write: also add, change and delete assets, directions and index "
    "jobs; admin: also create and delete collections"
)


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the ``keys`` command and its actions."""
    p = commands.add_parser("keys", help="API keys: create, list, revoke (reads the catalog)")
    actions = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key; it is printed once, last")
    create.add_argument(
        "--scope", required=True, choices=("read", "write", "admin"), help=SCOPE_HELP
    )
    create.add_argument(
        "--collection",
        action="append",
        metavar="NAME",
        help="limit the key to this collection; repeatable (default: every collection)",
    )
    create.add_argument("--name", metavar="LABEL", help="who or what the key is for")
    create.set_defaults(func=create_key)
    listing = actions.add_parser("list", help="every key with its scope; never secrets")
    listing.add_argument("--json", action="store_true", help="print one JSON object per key")
    listing.set_defaults(func=list_keys)
    revoke = actions.add_parser("revoke", help="revoke a key (servers refuse it within a poll)")
    revoke.add_argument("id", metavar="ID", help="the key's id or key id, as `keys list` shows")
    revoke.set_defaults(func=revoke_key)
    for action_parser in (create, listing, revoke):
        catalog_flags(action_parser)


def create_key(args: argparse.Namespace) -> int:
    """Create a key and print it, last, once."""
    catalog = open_catalog(settings_from(args))
    try:
        new = catalog.keys.create(args.scope, args.collection, args.name)
    finally:
        catalog.close()
    print(f"created API key {new.record.id}: {_summary(new.record)}")
    print("Store it now: it is shown only this once and cannot be recovered.")
    print("Clients send it as --api-key KEY or ASSETSEARCH_API_KEY=KEY:")
    print(new.key)
    return 0


def list_keys(args: argparse.Namespace) -> int:
    """Print every key (revoked ones marked), oldest first."""
    catalog = open_catalog(settings_from(args))
    try:
        records = catalog.keys.all()
    finally:
        catalog.close()
    if args.json:
        for record in records:
            print(json.dumps(key_dict(record)))
        return 0
    if not records:
        print("no API keys yet: `assetsearch keys create --scope read` makes one")
        return 0
    rows = [_row(key_dict(r)) for r in records]
    header = ("ID", "KEY ID", "NAME", "SCOPE", "COLLECTIONS", "CREATED", "REVOKED")
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def revoke_key(args: argparse.Namespace) -> int:
    """Revoke a key by id or key id."""
    catalog = open_catalog(settings_from(args))
    try:
        before = {r.id: r.revoked_at for r in catalog.keys.all()}
        record = catalog.keys.revoke(args.id)
    finally:
        catalog.close()
    if before.get(record.id) is not None:
        print(f"API key {record.id} ({record.key_id}) was already revoked at {_time(record)}")
    else:
        print(f"revoked API key {record.id}: {_summary(record)}; servers refuse it within a poll")
    return 0


def key_dict(record: ApiKeyRecord) -> dict[str, Any]:
    """A key as ``keys list --json`` prints it (no secret: the catalog keeps only a hash)."""
    return {
        "id": record.id,
        "key_id": record.key_id,
        "name": record.name,
        "scope": record.scope,
        "collections": sorted(record.collections) if record.collections is not None else None,
        "created_at": record.created_at.isoformat(timespec="seconds"),
        "revoked_at": record.revoked_at.isoformat(timespec="seconds")
        if record.revoked_at
        else None,
    }


def _row(d: dict[str, Any]) -> tuple[str, ...]:
    collections = ",".join(d["collections"]) if d["collections"] is not None else "(all)"
    return (
        str(d["id"]),
        d["key_id"],
        d["name"] or "-",
        d["scope"],
        collections,
        d["created_at"],
        d["revoked_at"] or "-",
    )


def _summary(record: ApiKeyRecord) -> str:
    collections = ", ".join(sorted(record.collections)) if record.collections else "all"
    label = f", name {record.name!r}" if record.name else ""
    return f"key id {record.key_id}, scope {record.scope}, collections: {collections}{label}"


def _time(record: ApiKeyRecord) -> str:
    return record.revoked_at.isoformat(timespec="seconds") if record.revoked_at else "-"
