"""The CLI filter syntax: clauses joined by ``and``, parsed into a ``Filter``.

Grammar::

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
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from latent.errors import InvalidArgument
from latent.query.expressions import scan_quoted
from latent.query.filters.model import (
    EPOCH,
    MAX_FILTER_CHARS,
    MEDIA_TYPES,
    Filter,
    MetadataCondition,
    Scalar,
    SizeRange,
    TimeRange,
    check_condition,
)


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
            check_condition("meta", condition)
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
    delta = moment - EPOCH
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
