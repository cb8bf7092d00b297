"""Compiles a ``Filter`` to a SQLAlchemy expression over ``assets``.

Every user value is a bound parameter, for SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

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

from latent.catalog.schema import Asset
from latent.errors import FailedPrecondition
from latent.query.filters.model import (
    EPOCH,
    Filter,
    MetadataCondition,
    Scalar,
    TimeRange,
)


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
    moment = EPOCH + dt.timedelta(microseconds=-(-ns // 1000))
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
