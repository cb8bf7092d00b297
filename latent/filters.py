"""Search filters: a validated ``Filter``, the CLI filter syntax, and its SQL compiler.

A filter restricts a search to assets whose catalog facts match: media type, uri or
path prefix, mtime / created / updated ranges, size range and conditions on the user
metadata. ``Filter`` validates itself on construction (``InvalidArgument`` naming the
field); ``where_clause`` compiles it to a SQLAlchemy expression over ``assets`` in
which every user value is a bound parameter, for SQLite and PostgreSQL alike.

The CLI syntax (``parse_filter``) is clauses joined by ``and``::

    filter  := clause ("and" clause)*
    clause  := FIELD OP VALUE | FIELD ["not"] "in" "(" VALUE ("," VALUE)* ")"
             | FIELD ["not"] "exists"
    FIELD   := media | uri | path | size | mtime | created | updated | meta.KEY
    OP      := "=" | "!=" | "<" | "<=" | ">" | ">=" | "^="
    VALUE   := a quoted string, or characters up to whitespace, "," or ")"

``media=image``, ``media in (image, video)``, ``uri^=file:///srv/``, ``path^=./cats``,
``size>=10KB``, ``mtime<2024-06-01``, ``created>=2024-01-01T12:00:00Z``,
``meta.tag=red``, ``meta.objects.0.color in (red, blue)``, ``meta.score=3``,
``meta.tag not exists``. A date alone stands for its whole (UTC) day, so
``mtime<=2024-01-31`` includes that day. Every mistake raises ``FilterSyntaxError``
naming its column.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import PurePosixPath
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Float,
    String,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    not_,
    or_,
    true,
)

from latent.errors import FailedPrecondition, InvalidArgument
from latent.expressions import scan_quoted
from latent.schema import Asset

MEDIA_TYPES = ("image", "video", "audio", "vector")
MAX_CONDITIONS = 32
MAX_VALUES = 256
MAX_KEY_PARTS = 16
MAX_TEXT = 4096
MAX_FILTER_CHARS = 8000
KEY_PART = re.compile(r"[\w\-:@/+]{1,128}")
# Timestamps a protobuf Timestamp can hold: years 1 to 9999.
MIN_NS = -62_135_596_800 * 10**9
MAX_NS = 253_402_300_799 * 10**9 + 999_999_999
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

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
        return tuple(int(p) if p.isdigit() else p for p in self.key.split("."))


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
            _check_condition(f"filter.metadata[{i}]", condition)

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


def _check_condition(where: str, c: MetadataCondition) -> None:
    parts = c.key.split(".")
    if not c.key or len(parts) > MAX_KEY_PARTS or not all(KEY_PART.fullmatch(p) for p in parts):
        raise InvalidArgument(
            f"{where}.key {c.key!r} is not a dotted key path of at most {MAX_KEY_PARTS} parts "
            "made of letters, digits and _ - : @ / +"
        )
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
    return (_EPOCH + dt.timedelta(microseconds=ns // 1000)).isoformat().replace("+00:00", "Z")


# -- compiling to SQL ---------------------------------------------------------------------


def where_clause(flt: Filter, dialect: str) -> ColumnElement[bool]:
    """The filter as a boolean SQL expression over ``assets`` (user values bound).

    Args:
        flt: The filter.
        dialect: The catalog's SQLAlchemy dialect name, "sqlite" or "postgresql".

    Raises:
        FailedPrecondition: metadata conditions on another database.
    """
    parts: list[ColumnElement[bool]] = []
    if flt.media_types:
        parts.append(Asset.media_type.in_(flt.media_types))
    if flt.uri_prefix:
        parts.append(Asset.uri.startswith(flt.uri_prefix, autoescape=True))
    if flt.path_prefix:
        base = PurePosixPath(flt.path_prefix).as_uri()
        inside = base.rstrip("/") + "/"
        parts.append(or_(Asset.uri == base, Asset.uri.startswith(inside, autoescape=True)))
    parts += _ns_range(flt.mtime)
    parts += _time_range(Asset.created_at, flt.created, dialect)
    parts += _time_range(Asset.updated_at, flt.updated, dialect)
    if flt.size.min is not None:
        parts.append(Asset.size >= flt.size.min)
    if flt.size.max is not None:
        parts.append(Asset.size <= flt.size.max)
    parts += [_condition(c, dialect) for c in flt.metadata]
    return and_(true(), *parts)


def _ns_range(part: TimeRange) -> list[ColumnElement[bool]]:
    out = []
    if part.start_ns is not None:
        out.append(Asset.mtime_ns >= part.start_ns)
    if part.end_ns is not None:
        out.append(Asset.mtime_ns < part.end_ns)
    return out


def _time_range(column: Any, part: TimeRange, dialect: str) -> list[ColumnElement[bool]]:
    out = []
    if part.start_ns is not None:
        out.append(column >= _time_value(part.start_ns, dialect))
    if part.end_ns is not None:
        out.append(column < _time_value(part.end_ns, dialect))
    return out


def _time_value(ns: int, dialect: str) -> Any:
    # Stored times have microseconds at most: rounding up keeps ">=" and "<" exact.
    moment = _EPOCH + dt.timedelta(microseconds=-(-ns // 1000))
    if dialect != "sqlite":
        return bindparam(None, moment)
    # SQLite keeps UTC text: "YYYY-MM-DD HH:MM:SS" (CURRENT_TIMESTAMP), sometimes with
    # ".ffffff". Text without the fraction for a whole second compares right with both.
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return bindparam(None, text, String())


@dataclass(frozen=True)
class _JsonAt:
    """The JSON type name and the scalar (as SQL) at a path; both NULL when absent."""

    kind: ColumnElement[Any]
    value: ColumnElement[Any]


# Type names of SQLite's json_type and PostgreSQL's json_typeof together.
_TEXT_KINDS = ("text", "string")
_NUMBER_KINDS = ("integer", "real", "number")


def _json_at(path: tuple[str | int, ...], dialect: str) -> _JsonAt:
    column = Asset.user_metadata
    if dialect == "sqlite":
        json_path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f'."{p}"' for p in path)
        bound = bindparam(None, json_path, String())
        return _JsonAt(func.json_type(column, bound), func.json_extract(column, bound))
    if dialect == "postgresql":
        parts = tuple(str(p) for p in path)
        return _JsonAt(func.json_typeof(column[parts]), column[parts].as_string())
    raise FailedPrecondition(f"metadata filters need SQLite or PostgreSQL, not {dialect}")


def _equals(at: _JsonAt, value: Scalar, dialect: str) -> ColumnElement[bool]:
    if isinstance(value, bool):
        word = "true" if value else "false"
        if dialect == "sqlite":
            return at.kind == word
        return and_(at.kind == "boolean", at.value == word)
    if isinstance(value, str):
        return and_(at.kind.in_(_TEXT_KINDS), at.value == value)
    # CASE guards the cast: PostgreSQL would fail casting a text value to a number.
    number = case((at.kind.in_(_NUMBER_KINDS), cast(at.value, Float())), else_=None)
    return number == float(value)


def _condition(c: MetadataCondition, dialect: str) -> ColumnElement[bool]:
    at = _json_at(c.path, dialect)
    if c.op in ("exists", "not_exists"):
        present = and_(at.kind.is_not(None), at.kind != "null")
        return present if c.op == "exists" else not_(func.coalesce(present, false()))
    matched = or_(*(_equals(at, v, dialect) for v in c.values))
    # NULL (key absent) counts as "no match", so the negations include such assets.
    known = func.coalesce(matched, false())
    return known if c.op in ("eq", "in") else not_(known)


# -- the CLI syntax -----------------------------------------------------------------------


class FilterSyntaxError(InvalidArgument):
    """A filter string that does not parse; the message names the column (1-based)."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"filter column {column}: {message}")
        self.column = column


_FIELDS = ("media", "uri", "path", "size", "mtime", "created", "updated")
_OPS = ("!=", "<=", ">=", "^=", "=", "<", ">")
_FIELD = re.compile(r"(?:meta\.[^\s=!<>^(),]*|[A-Za-z_]\w*)")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_OP_HELP = {
    "media": "'=', '!=', 'in (...)' or 'not in (...)'",
    "uri": "'^=' (starts with)",
    "path": "'^=' (is or lies under)",
    "size": "'=', '<', '<=', '>' or '>='",
    "time": "'=', '<', '<=', '>' or '>='",
    "meta": "'=', '!=', 'in (...)', 'not in (...)', 'exists' or 'not exists'",
}


@dataclass(frozen=True)
class _Value:
    text: str
    quoted: bool
    column: int


class _Parser:
    def __init__(self, text: str, resolve_path: Callable[[str], str] | None) -> None:
        self.text = text
        self.pos = 0
        self.resolve_path = resolve_path
        self.flt = Filter()

    def fail(self, message: str, pos: int | None = None) -> FilterSyntaxError:
        return FilterSyntaxError(message, (self.pos if pos is None else pos) + 1)

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def word(self, *words: str) -> str | None:
        """Consume one of ``words`` (case-insensitive) when it stands alone next."""
        self.skip()
        for w in words:
            end = self.pos + len(w)
            follows = self.text[end : end + 1]
            if self.text[self.pos : end].lower() == w and not (follows.isalnum() or follows == "_"):
                self.pos = end
                return w
        return None

    def parse(self) -> Filter:
        self.skip()
        if not self.text.strip():
            raise self.fail("the filter is empty", 0)
        self.clause()
        while True:
            self.skip()
            if self.pos >= len(self.text):
                return self.flt
            if not self.word("and"):
                raise self.fail(f"unexpected {self.text[self.pos]!r}; expected 'and' or the end")
            self.clause()

    def clause(self) -> None:
        self.skip()
        start = self.pos
        match = _FIELD.match(self.text, self.pos)
        name = match.group() if match else ""
        if not match or (name not in _FIELDS and not name.startswith("meta.")):
            raise self.fail(
                "expected a field: media, uri, path, size, mtime, created, updated or meta.KEY"
            )
        self.pos = match.end()
        if name.startswith("meta."):
            self.meta_clause(name[5:], start)
        elif name == "media":
            self.media_clause(start)
        elif name in ("uri", "path"):
            self.prefix_clause(name, start)
        elif name == "size":
            self.size_clause(start)
        else:
            self.time_clause(name, start)

    def op(self, field_name: str, allowed: tuple[str, ...]) -> str:
        """The next comparison operator, or 'in' / 'not in' / 'exists' / 'not exists'."""
        self.skip()
        at = self.pos
        negated = self.word("not") is not None
        keyword = self.word("in", "exists")
        if keyword:
            op = ("not " if negated else "") + keyword
        elif negated:
            raise self.fail("expected 'in' or 'exists' after 'not'")
        else:
            op = next((o for o in _OPS if self.text.startswith(o, self.pos)), "")
            self.pos += len(op)
        if op not in allowed:
            kind = "time" if field_name in ("mtime", "created", "updated") else field_name
            got = f"{op!r}" if op else "nothing"
            raise self.fail(f"{field_name} takes {_OP_HELP[kind]}, got {got}", at)
        return op

    def value(self) -> _Value:
        self.skip()
        start = self.pos
        if self.pos >= len(self.text):
            raise self.fail("expected a value")
        char = self.text[self.pos]
        if char in ('"', "'"):
            return _Value(self.string(), True, start)
        end = self.pos
        while end < len(self.text) and not (self.text[end].isspace() or self.text[end] in ",)("):
            end += 1
        if end == self.pos:
            raise self.fail(f"unexpected {char!r}; expected a value")
        self.pos = end
        return _Value(self.text[start:end], False, start)

    def string(self) -> str:
        start = self.pos
        value, self.pos = scan_quoted(self.text, start)
        if value is None:
            raise self.fail("unterminated string", start)
        return value

    def values(self, op: str) -> list[_Value]:
        if op not in ("in", "not in"):
            return [self.value()]
        self.skip()
        if not self.text.startswith("(", self.pos):
            raise self.fail(f"expected '(' after '{op}'")
        opened = self.pos
        self.pos += 1
        out = [self.value()]
        while True:
            self.skip()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                out.append(self.value())
            elif self.text.startswith(")", self.pos):
                self.pos += 1
                return out
            else:
                raise self.fail("'(' is never closed; expected ',' or ')'", opened)

    def set(self, start: int, **changes: Any) -> None:
        """Apply changes to the filter, reporting a contradiction at the clause."""
        try:
            self.flt = replace(self.flt, **changes)
        except InvalidArgument as exc:
            raise self.fail(str(exc).removeprefix("filter."), start) from None

    def media_clause(self, start: int) -> None:
        op = self.op("media", ("=", "!=", "in", "not in"))
        given = []
        for v in self.values(op):
            if v.text not in MEDIA_TYPES:
                raise self.fail(
                    f"{v.text!r} is not a media type ({', '.join(MEDIA_TYPES)})", v.column
                )
            given.append(v.text)
        chosen = set(given) if op in ("=", "in") else set(MEDIA_TYPES) - set(given)
        if self.flt.media_types:
            chosen &= set(self.flt.media_types)
        if not chosen:
            raise self.fail("no media type is left by the media clauses together", start)
        self.set(start, media_types=tuple(m for m in MEDIA_TYPES if m in chosen))

    def prefix_clause(self, name: str, start: int) -> None:
        self.op(name, ("^=",))
        v = self.value()
        key = "uri_prefix" if name == "uri" else "path_prefix"
        if getattr(self.flt, key):
            raise self.fail(f"{name}^= is given twice", start)
        text = v.text
        if name == "path":
            if not text.startswith("/") and self.resolve_path is not None:
                text = self.resolve_path(text)
            if not text.startswith("/"):
                raise self.fail(f"path {v.text!r} is not absolute", v.column)
        self.set(start, **{key: text})

    def size_clause(self, start: int) -> None:
        op = self.op("size", ("=", "<", "<=", ">", ">="))
        v = self.value()
        match = _SIZE.fullmatch(v.text)
        if not match:
            raise self.fail(f"{v.text!r} is not a size such as 5000, 10KB or 2MiB", v.column)
        exact = Decimal(match.group(1)) * _UNITS[(match.group(2) or "").lower()]
        if exact != exact.to_integral_value():
            raise self.fail(f"{v.text} is not a whole number of bytes", v.column)
        low, high = _bounds(op, int(exact), int(exact) + 1)
        current = self.flt.size
        self.set(start, size=SizeRange(_max(current.min, low), _min(current.max, _dec(high))))

    def time_clause(self, name: str, start: int) -> None:
        op = self.op(name, ("=", "<", "<=", ">", ">="))
        v = self.value()
        span = _time_span(v.text)
        if span is None:
            raise self.fail(
                f"{v.text!r} is not a date or time such as 2024-05-31 or 2024-05-31T12:00:00Z",
                v.column,
            )
        low, high = _bounds(op, *span)
        current: TimeRange = getattr(self.flt, name)
        self.set(
            start, **{name: TimeRange(_max(current.start_ns, low), _min(current.end_ns, high))}
        )

    def meta_clause(self, key: str, start: int) -> None:
        if not key:
            raise self.fail("expected a key after 'meta.'", start + 5)
        op = self.op("meta", ("=", "!=", "in", "not in", "exists", "not exists"))
        values: tuple[Scalar, ...] = ()
        if op not in ("exists", "not exists"):
            values = tuple(_scalar(v) for v in self.values(op))
        names = {"=": "eq", "!=": "ne", "in": "in", "not in": "not_in"}
        names |= {"exists": "exists", "not exists": "not_exists"}
        condition = MetadataCondition(key, names[op], values)  # type: ignore[arg-type]
        try:
            _check_condition("meta", condition)
        except InvalidArgument as exc:
            raise self.fail(str(exc), start) from None
        self.set(start, metadata=(*self.flt.metadata, condition))


def _bounds(op: str, low: int, high: int) -> tuple[int | None, int | None]:
    """(inclusive start, exclusive end) of ``op`` applied to the span [low, high)."""
    return {
        "=": (low, high),
        ">=": (low, None),
        ">": (high, None),
        "<": (None, low),
        "<=": (None, high),
    }[op]


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _min(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _dec(end: int | None) -> int | None:
    """An exclusive end as an inclusive maximum."""
    return None if end is None else end - 1


def _time_span(text: str) -> tuple[int, int] | None:
    """[start, end) in ns: a whole UTC day for a date, one nanosecond for a time."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
            return _ns(start), _ns(start) + 86_400 * 10**9
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return _ns(moment), _ns(moment) + 1


def _ns(moment: dt.datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def _scalar(v: _Value) -> Scalar:
    """A metadata value: quoted is text; bare true/false and numbers are typed."""
    if v.quoted:
        return v.text
    if v.text in ("true", "false"):
        return v.text == "true"
    if _NUMBER.fullmatch(v.text):
        try:
            return float(Decimal(v.text))
        except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
            pass
    return v.text


def parse_filter(text: str, resolve_path: Callable[[str], str] | None = None) -> Filter:
    """Parse the CLI filter syntax (see the module docstring) into a ``Filter``.

    Args:
        text: The filter string.
        resolve_path: Turns a relative ``path^=`` value into an absolute path (the CLI
            resolves against the working directory); without it such a path is an error.

    Raises:
        FilterSyntaxError: the string is malformed; the message names the column.
    """
    if len(text) > MAX_FILTER_CHARS:
        raise FilterSyntaxError(f"the filter is longer than {MAX_FILTER_CHARS} characters", 1)
    return _Parser(text, resolve_path).parse()


def combine(filters: list[Filter]) -> Filter:
    """Filters that must all hold, as one (for repeated --filter flags).

    Raises:
        InvalidArgument: together they contradict (no media type left, two prefixes).
    """
    out = Filter()
    for f in filters:
        media = tuple(m for m in f.media_types if not out.media_types or m in out.media_types)
        if out.media_types and f.media_types and not media:
            raise InvalidArgument("the filters leave no media type")
        for key in ("uri_prefix", "path_prefix"):
            if getattr(out, key) and getattr(f, key):
                raise InvalidArgument(f"two filters set {key}; give one")
        out = replace(
            out,
            media_types=media or out.media_types,
            uri_prefix=out.uri_prefix or f.uri_prefix,
            path_prefix=out.path_prefix or f.path_prefix,
            mtime=_meet_time(out.mtime, f.mtime),
            created=_meet_time(out.created, f.created),
            updated=_meet_time(out.updated, f.updated),
            size=SizeRange(_max(out.size.min, f.size.min), _min(out.size.max, f.size.max)),
            metadata=out.metadata + f.metadata,
        )
    return out


def _meet_time(a: TimeRange, b: TimeRange) -> TimeRange:
    return TimeRange(_max(a.start_ns, b.start_ns), _min(a.end_ns, b.end_ns))
