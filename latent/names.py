"""The naming rules shared by every layer: direction names and dotted metadata key paths."""

from __future__ import annotations

import re
from typing import Any

from latent.errors import InvalidArgument

DIRECTION_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}")
"""A direction's name, as stored and as written after ``dir:`` in an expression."""
MAX_KEY_PARTS = 16
KEY_PART = re.compile(r"[\w\-:@/+]{1,128}")


def check_direction_name(name: str) -> str:
    """The name, if it is a valid direction name.

    Raises:
        InvalidArgument: it is empty, too long or has other characters.
    """
    if not DIRECTION_NAME.fullmatch(name):
        raise InvalidArgument("direction name must be 1-200 letters, digits, '_', '-' or '.'")
    return name


def key_path(key: str) -> tuple[str | int, ...]:
    """A dotted metadata key ("objects.0.color") as its parts; all-digit parts index lists."""
    return tuple(int(p) if p.isdigit() else p for p in key.split("."))


def check_key_path(key: str, where: str) -> None:
    """Check that ``key`` is a dotted metadata key path.

    Raises:
        InvalidArgument: it is empty, too deep or has a malformed part (``where`` names it).
    """
    parts = key.split(".")
    if not key or len(parts) > MAX_KEY_PARTS or not all(KEY_PART.fullmatch(p) for p in parts):
        raise InvalidArgument(
            f"{where} {key!r} is not a dotted key path of at most {MAX_KEY_PARTS} parts "
            "made of letters, digits and _ - : @ / +"
        )


def value_at(metadata: Any, key: str) -> Any:
    """The metadata value at a dotted key path; None when any part is absent."""
    value = metadata
    for part in key_path(key):
        if isinstance(value, dict):
            value = value.get(str(part))
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            return None
    return value
