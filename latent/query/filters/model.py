"""Search filters: the validated ``Filter`` a search is restricted by.

A filter restricts a search to assets whose catalog facts match: media type, uri or
path prefix, mtime / created / updated ranges, size range and conditions on the user
metadata. ``Filter`` validates itself on construction (``InvalidArgument`` naming the
field). The text syntax is ``latent.query.filters.syntax``; the SQL compiler is
``latent.catalog.where``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from latent.errors import InvalidArgument
from latent.names import check_key_path, key_path

MEDIA_TYPES = ("image", "video", "audio", "vector")
MAX_CONDITIONS = 32
MAX_VALUES = 256
MAX_TEXT = 4096
MAX_FILTER_CHARS = 8000
# Timestamps a protobuf Timestamp can hold: years 1 to 9999.
MIN_NS = -62_135_596_800 * 10**9
MAX_NS = 253_402_300_799 * 10**9 + 999_999_999
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

Scalar = str | float | bool
MetadataOp = Literal["eq", "ne", "in", "not_in", "exists", "not_exists"]
METADATA_OPS: tuple[MetadataOp, ...] = ("eq", "ne", "in", "not_in", "exists", "not_exists")
_OP_NAMES = {
    "eq": "EQUALS (=)",
    "ne": "NOT_EQUALS (!=)",
    "in": "IN",
    "not_in": "NOT_IN",
    "exists": "EXISTS",
    "not_exists": "NOT_EXISTS",
}


@dataclass(frozen=True)
class TimeRange:
    """``start_ns <= t < end_ns`` in nanoseconds since the epoch (UTC); None is open."""

    start_ns: int | None = None
    end_ns: int | None = None

    def is_set(self) -> bool:
        """Whether either end is given."""
        return self.start_ns is not None or self.end_ns is not None


@dataclass(frozen=True)
class SizeRange:
    """``min <= size <= max`` in bytes; None is open."""

    min: int | None = None
    max: int | None = None

    def is_set(self) -> bool:
        """Whether either end is given."""
        return self.min is not None or self.max is not None


@dataclass(frozen=True)
class MetadataCondition:
    """A condition on the user-metadata value at a dotted key path."""

    key: str
    op: MetadataOp
    values: tuple[Scalar, ...] = ()

    @property
    def path(self) -> tuple[str | int, ...]:
        """The key split at dots; all-digit parts index lists."""
        return key_path(self.key)


@dataclass(frozen=True)
class Filter:
    """Every part that is set must hold; the empty filter matches everything.

    Raises:
        InvalidArgument: a part is malformed (the message names it).
    """

    media_types: tuple[str, ...] = ()
    uri_prefix: str = ""
    path_prefix: str = ""
    mtime: TimeRange = field(default_factory=TimeRange)
    created: TimeRange = field(default_factory=TimeRange)
    updated: TimeRange = field(default_factory=TimeRange)
    size: SizeRange = field(default_factory=SizeRange)
    metadata: tuple[MetadataCondition, ...] = ()

    def __post_init__(self) -> None:
        _check_media(self.media_types)
        _check_text("uri_prefix", self.uri_prefix)
        if self.path_prefix:
            _check_text("path_prefix", self.path_prefix)
            if not self.path_prefix.startswith("/"):
                raise InvalidArgument(
                    f"filter.path_prefix must be an absolute path, got {self.path_prefix!r}"
                )
        for name in ("mtime", "created", "updated"):
            _check_time(name, getattr(self, name))
        _check_size(self.size)
        if len(self.metadata) > MAX_CONDITIONS:
            raise InvalidArgument(f"filter.metadata: at most {MAX_CONDITIONS} conditions")
        for i, condition in enumerate(self.metadata):
            check_condition(f"filter.metadata[{i}]", condition)

    def is_empty(self) -> bool:
        """Whether the filter lets every asset through."""
        return self == Filter()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form with only the parts that are set (stable key order)."""
        out: dict[str, Any] = {}
        if self.media_types:
            out["media_types"] = sorted(self.media_types)
        for name in ("uri_prefix", "path_prefix"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        for name in ("mtime", "created", "updated", "size"):
            part = getattr(self, name)
            if part.is_set():
                out[name] = {k: v for k, v in vars(part).items() if v is not None}
        if self.metadata:
            out["metadata"] = [
                {"key": c.key, "op": c.op, "values": list(c.values)} for c in self.metadata
            ]
        return out


# -- validation ---------------------------------------------------------------------------


def _check_media(media_types: tuple[str, ...]) -> None:
    for m in media_types:
        if m not in MEDIA_TYPES:
            raise InvalidArgument(
                f"filter.media_types: {m!r} is not a media type (one of {', '.join(MEDIA_TYPES)})"
            )


def _check_text(name: str, value: str) -> None:
    if len(value) > MAX_TEXT:
        raise InvalidArgument(f"filter.{name} is longer than {MAX_TEXT} characters")
    if "\x00" in value:
        raise InvalidArgument(f"filter.{name} contains a NUL character")


def _check_time(name: str, part: TimeRange) -> None:
    for end in (part.start_ns, part.end_ns):
        if end is not None and not MIN_NS <= end <= MAX_NS:
            raise InvalidArgument(f"filter.{name}: a time outside the years 1 to 9999")
    if part.start_ns is not None and part.end_ns is not None and part.start_ns >= part.end_ns:
        raise InvalidArgument(
            f"filter.{name}: start {format_ns(part.start_ns)} is not before end "
            f"{format_ns(part.end_ns)}, so nothing can match"
        )


def _check_size(part: SizeRange) -> None:
    for end in (part.min, part.max):
        if end is not None and end < 0:
            raise InvalidArgument(f"filter.size: a size cannot be negative, got {end}")
    if part.min is not None and part.max is not None and part.min > part.max:
        raise InvalidArgument(
            f"filter.size: min {part.min} is greater than max {part.max}, so nothing can match"
        )


def check_condition(where: str, c: MetadataCondition) -> None:
    """Check a metadata condition: its key path, op, number of values and their types.

    Raises:
        InvalidArgument: the condition is malformed (``where`` names it).
    """
    check_key_path(c.key, f"{where}.key")
    if c.op not in METADATA_OPS:
        raise InvalidArgument(f"{where}: op must be one of {', '.join(_OP_NAMES.values())}")
    wanted = {"eq": (1, 1), "ne": (1, 1), "in": (1, MAX_VALUES), "not_in": (1, MAX_VALUES)}
    low, high = wanted.get(c.op, (0, 0))
    if not low <= len(c.values) <= high:
        count = "no values" if high == 0 else ("one value" if high == 1 else f"1 to {high} values")
        raise InvalidArgument(
            f"{where} ({c.key!r}): {_OP_NAMES[c.op]} takes {count}, got {len(c.values)}"
        )
    for v in c.values:
        if isinstance(v, float) and not math.isfinite(v):
            raise InvalidArgument(f"{where}: {v} is not a finite number")
        if isinstance(v, str):
            _check_text("metadata value", v)
        elif not isinstance(v, bool | float | int):
            raise InvalidArgument(f"{where}: values are texts, numbers or booleans")


def format_ns(ns: int) -> str:
    """An ISO 8601 UTC form of a nanosecond timestamp (for messages)."""
    return (EPOCH + dt.timedelta(microseconds=ns // 1000)).isoformat().replace("+00:00", "Z")
