"""Flags shared by commands; a flag that overrides a `Settings` field is declared from it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from latent.settings import Settings

if TYPE_CHECKING:
    from assetsearch_client import SearchClient

    from latent.catalog import Catalog

# The parser default naming the Settings fields bound to a command's flags; it is filled in
# by `setting_flag` alone, so no second list of those flags exists.
BOUND = "settings_fields"

FILTER_HELP = (
    "only assets matching FILTER, e.g. 'media=image and size>=10KB and mtime>=2024-01-01 "
    "and path^=./cats and meta.tag in (red, blue)'; repeatable (all must hold)"
)


def setting_flag(parser: argparse.ArgumentParser, field: str) -> None:
    """Add ``--FIELD``, which overrides the `Settings` field of that name.

    The flag's type, and its help (the field's description, its environment variable
    and its default), come from the field.

    Args:
        parser: The command's parser.
        field: A `Settings` field name, e.g. "server" (flag ``--server``).

    Raises:
        KeyError: no such field.
    """
    info = Settings.model_fields[field]
    flag = "--" + field.replace("_", "-")
    if info.annotation is bool:  # a switch: given means true, absent leaves the setting
        parser.add_argument(
            flag, dest=field, action="store_true", default=None, help=_flag_help(field, info)
        )
    else:
        choices = _choices(info)
        parser.add_argument(
            flag,
            dest=field,
            type=_flag_type(info),
            choices=choices,
            metavar="|".join(choices) if choices else None,
            help=_flag_help(field, info),
        )
    parser.set_defaults(**{BOUND: (*(parser.get_default(BOUND) or ()), field)})


def _flag_type(info: FieldInfo) -> Callable[[str], Any]:
    """The argparse type of a field: its int, float or Path, else str (pydantic does the rest)."""
    kinds = [k for k in get_args(info.annotation) if k is not type(None)] or [info.annotation]
    return kinds[0] if kinds[0] in (int, float, Path) else str


def _choices(info: FieldInfo) -> list[str] | None:
    """The values of a ``Literal[...]`` field (optional or not); None for any other field."""
    for kind in (info.annotation, *get_args(info.annotation)):
        if get_origin(kind) is Literal:
            return [str(v) for v in get_args(kind)]
    return None


def _flag_help(field: str, info: FieldInfo) -> str:
    words = (info.description or field).rstrip(".")
    if words[:2].istitle():  # "Images per ..." reads "images per ..."; "HOST:PORT" stays
        words = words[0].lower() + words[1:]
    env = (Settings.model_config.get("env_prefix") or "") + field.upper()
    shown = info.default not in (None, PydanticUndefined) and info.default != []
    default = f", default {_shown(info.default)}" if shown else ""
    return f"{words} ({env}{default})"


def _shown(default: object) -> str:
    """A default as help shows it: a string quoted ('default'), a number or path as is."""
    return repr(default) if isinstance(default, str) else str(default)


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the setting flags that were given.

    Raises:
        ValueError: a flag or variable is out of range (one line naming the setting).
    """
    bound = getattr(args, BOUND, ())
    given = {f: getattr(args, f) for f in bound if getattr(args, f) is not None}
    try:
        settings = Settings(**given)
    except ValidationError as exc:  # pydantic's report spans lines; a CLI error is one
        problems = (f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError("; ".join(problems)) from None
    settings.apply_threads()
    return settings


def open_catalog(settings: Settings) -> Catalog:
    """The catalog the settings name (loads SQLAlchemy: the commands that write or read it)."""
    from latent.catalog import Catalog

    return Catalog(settings.resolved_database_url())


def catalog_flags(parser: argparse.ArgumentParser) -> None:
    """Flags of the commands that open the catalog directly."""
    setting_flag(parser, "data_dir")
    setting_flag(parser, "database_url")


def client_flags(parser: argparse.ArgumentParser, json_help: str = "print JSON Lines") -> None:
    """Flags of the commands that call a server."""
    parser.add_argument("--collection", help="collection (default: the server's default)")
    connection_flags(parser)
    parser.add_argument("--json", action="store_true", help=json_help)


def connection_flags(parser: argparse.ArgumentParser) -> None:
    """Where the server is and how to reach it: address, API key, TLS."""
    for field in ("server", "api_key", "tls_ca", "tls_client_cert", "tls_client_key"):
        setting_flag(parser, field)


def connect(
    settings: Settings, timeout: float = 60.0, server_name: str | None = None
) -> SearchClient:
    """A client of the server the settings name, with their API key and TLS.

    TLS is on when a CA (``--tls-ca``) or a client certificate is given; ``server_name``
    is the name the server's certificate must carry when it is not the address's host.

    Raises:
        ValueError: a client certificate without its key, or the other way round.
        OSError: a certificate file cannot be read.
    """
    from assetsearch_client import SearchClient, Tls

    tls = None
    if settings.tls_ca or settings.tls_client_cert or settings.tls_client_key:
        tls = Tls.from_files(
            settings.tls_ca, settings.tls_client_cert, settings.tls_client_key, server_name
        )
    return SearchClient(
        settings.server,
        timeout=timeout,
        api_key=settings.api_key,
        tls=tls,
        max_message_bytes=int(settings.max_message_bytes),
    )


def filter_flag(parser: argparse.ArgumentParser) -> None:
    """The repeatable --filter flag."""
    parser.add_argument("--filter", action="append", metavar="FILTER", help=FILTER_HELP)
