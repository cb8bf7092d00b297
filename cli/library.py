"""``assetsearch put`` and ``rm``: upload and delete assets through a server's LibraryService.

Neither needs the server's filesystem: ``put`` streams each file's bytes to the server,
which decodes, embeds and writes it; ``rm`` deletes by asset id or by uri.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from assetsearch_client import AssetSearchError

from cli.options import client_flags, connect, settings_from
from cli.output import usage_error


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the ``put`` and ``rm`` commands."""
    put = commands.add_parser(
        "put", help="upload image files to a server (decoded and embedded there)"
    )
    put.add_argument("files", nargs="+", metavar="FILE", help="image files to upload")
    put.add_argument(
        "--id",
        metavar="ID",
        help="the asset's uri (your own id for it; one FILE only; default: FILE's absolute "
        "path). The same id again replaces the asset",
    )
    put.add_argument(
        "--metadata", metavar="JSON", help="user metadata, a JSON object, for every FILE"
    )
    client_flags(put, json_help="print one JSON object per file")
    put.set_defaults(func=put_files)
    rm = commands.add_parser("rm", help="delete assets on a server, by id or --uri")
    rm.add_argument("assets", nargs="+", metavar="ID", help="asset ids (with --uri: uris)")
    rm.add_argument("--uri", action="store_true", help="the arguments are uris, not asset ids")
    client_flags(rm, json_help="print one JSON object per asset")
    rm.set_defaults(func=remove_assets)


def put_files(args: argparse.Namespace) -> int:
    """Upload each file; a failed one is reported and the others still go.

    Returns:
        0 when every file was written, 1 when any failed, 2 on a usage error.
    """
    if args.id is not None and len(args.files) != 1:
        return usage_error("--id names one asset: give exactly one FILE with it")
    if args.id == "":
        return usage_error("--id must not be empty")
    metadata = _metadata_arg(args.metadata)
    if isinstance(metadata, int):
        return metadata
    failed = 0
    with connect(settings_from(args)) as client:
        for file in args.files:
            uri = args.id if args.id is not None else os.path.abspath(os.path.expanduser(file))
            try:
                reply = client.upsert_asset(
                    Path(file).expanduser(),
                    uri,
                    collection=args.collection or "",
                    metadata=metadata,
                )
            except (AssetSearchError, OSError) as exc:
                failed += 1
                _report_failure(args.json, {"file": file, "uri": uri}, exc)
                continue
            status = "created" if reply.created else "replaced"
            asset = reply.asset
            row = {"file": file, "status": status, "asset_id": asset.id, "uri": asset.uri}
            _print(args.json, row, f"{status:<8}  {asset.id}  {asset.uri}")
    return 1 if failed else 0


def remove_assets(args: argparse.Namespace) -> int:
    """Delete each asset; a failed one is reported and the others still go.

    Returns:
        0 when every asset was deleted, 1 when any failed, 2 on a usage error.
    """
    if not args.uri:
        bad = [a for a in args.assets if not a.isdigit() or int(a) <= 0]
        if bad:
            return usage_error(f"not an asset id: {bad[0]!r} (to delete by uri, add --uri)")
    failed = 0
    with connect(settings_from(args)) as client:
        for name in args.assets:
            target: dict[str, Any] = {"uri": name} if args.uri else {"asset_id": int(name)}
            try:
                asset_id = client.delete_asset(
                    target.get("asset_id", 0),
                    uri=target.get("uri", ""),
                    collection=args.collection or "",
                )
            except AssetSearchError as exc:
                failed += 1
                _report_failure(args.json, target, exc)
                continue
            row = {"status": "deleted", "asset_id": asset_id, **target}
            shown = f"  {name}" if args.uri else ""
            _print(args.json, row, f"deleted  {asset_id}{shown}")
    return 1 if failed else 0


def _metadata_arg(text: str | None) -> dict[str, Any] | None | int:
    """The --metadata object, or the exit status of a usage error."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return usage_error(f"--metadata is not JSON: {exc.msg} (at character {exc.pos})")
    if not isinstance(value, dict):
        return usage_error('--metadata must be a JSON object, e.g. \'{"tag": "red"}\'')
    return value


def _report_failure(as_json: bool, what: dict[str, Any], exc: Exception) -> None:
    if isinstance(exc, AssetSearchError) and exc.from_server:
        reason = f"{exc.status.name}: {exc}"
    elif isinstance(exc, OSError):
        reason = f"cannot read the file: {exc.strerror or exc}"
    else:
        reason = str(exc)
    if as_json:
        print(json.dumps({**what, "status": "failed", "error": reason}), flush=True)
    name = what.get("file") or what.get("uri") or what.get("asset_id")
    print(f"error: {name}: {reason}", file=sys.stderr, flush=True)


def _print(as_json: bool, row: dict[str, Any], line: str) -> None:
    print(json.dumps(row) if as_json else line, flush=True)
