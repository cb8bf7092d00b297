"""Conversions between domain types (records, terms, filters) and protobuf messages.

Importing this module loads no SQL, FAISS or torch: the CLI converts filters with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb
from assetsearch_client.client import struct
from google.protobuf import timestamp_pb2

from latent.errors import InvalidArgument
from latent.query.filters import Filter, MetadataCondition, MetadataOp, Scalar, SizeRange, TimeRange
from latent.query.terms import Asset, Direction, Image, Term, Text, Vector

if TYPE_CHECKING:
    from latent.catalog import AssetRecord, CollectionInfo, DirectionRecord
    from latent.index.layers import LayeredIndex
    from service.queries import Found

STATES = {"indexed": pb.Asset.INDEXED, "failed": pb.Asset.FAILED, "deleted": pb.Asset.DELETED}
_OPS: dict[pb.MetadataCondition.Op, MetadataOp] = {
    pb.MetadataCondition.EQUALS: "eq",
    pb.MetadataCondition.NOT_EQUALS: "ne",
    pb.MetadataCondition.IN: "in",
    pb.MetadataCondition.NOT_IN: "not_in",
    pb.MetadataCondition.EXISTS: "exists",
    pb.MetadataCondition.NOT_EXISTS: "not_exists",
}
_OP_NUMBERS = {name: number for number, name in _OPS.items()}


def timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp:
    """A protobuf Timestamp (naive datetimes from SQLite are UTC)."""
    ts = timestamp_pb2.Timestamp()
    if value is not None:
        ts.FromDatetime(value if value.tzinfo else value.replace(tzinfo=dt.UTC))
    return ts


def asset_message(a: AssetRecord) -> pb.Asset:
    """The Asset message for a catalog record."""
    mtime = timestamp_pb2.Timestamp()
    mtime.FromNanoseconds(a.mtime_ns)
    return pb.Asset(
        id=a.id,
        collection=a.collection,
        uri=a.uri,
        content_hash=a.content_hash or "",
        media_type=a.media_type,
        size_bytes=a.size,
        mtime=mtime,
        width=a.width or 0,
        height=a.height or 0,
        state=STATES.get(a.state, pb.Asset.STATE_UNSPECIFIED),
        error=a.error or "",
        metadata=struct(a.metadata),
        created_at=timestamp(a.created_at),
        updated_at=timestamp(a.updated_at),
    )


def collection_message(
    c: CollectionInfo, index_size: int, index_seq: int, index: LayeredIndex | None = None
) -> pb.Collection:
    """The Collection message, with the served index generation's size, seq and type."""
    served: dict[str, Any] = {}
    if index is not None:
        params = ", ".join(f"{k}={v}" for k, v in index.spec.params().items())
        if index.pending:
            params = ", ".join(filter(None, [params, f"pending={index.pending}"]))
        served = {
            "index_type": index.spec.kind,
            "index_params": params,
            "index_bytes_per_vector": index.bytes_per_vector(),
        }
    return pb.Collection(
        name=c.name,
        model_spec=c.model_spec,
        dim=c.dim,
        metric=c.metric,
        indexed=c.counts.get("indexed", 0),
        failed=c.counts.get("failed", 0),
        deleted=c.counts.get("deleted", 0),
        index_size=index_size,
        index_seq=index_seq,
        **served,
    )


def hit_message(found: Found, term_cosines: Sequence[float] | None = None) -> pb.Hit:
    """The Hit message of a found asset."""
    asset = found.asset
    start, end = found.segment
    return pb.Hit(
        asset_id=asset.id,
        uri=asset.uri,
        score=found.score,
        media_type=asset.media_type,
        width=asset.width or 0,
        height=asset.height or 0,
        segment_start=start,
        segment_end=end,
        metadata=struct(asset.metadata),
        term_cosines=[] if term_cosines is None else list(term_cosines),
    )


def direction_message(record: DirectionRecord, others: Sequence[DirectionRecord]) -> pb.Direction:
    """The Direction message, with its cosine to every other direction."""
    unit = record.vector / max(float(np.linalg.norm(record.vector)), 1e-12)
    cosines = {
        o.name: float(unit @ (o.vector / max(float(np.linalg.norm(o.vector)), 1e-12)))
        for o in others
        if o.name != record.name
    }
    return pb.Direction(
        name=record.name,
        norm=record.norm,
        positive=record.examples.get("positive", []),
        negative=record.examples.get("negative", []),
        orthogonal_to=list(record.orthogonal_to),
        cosines=cosines,
        created_at=timestamp(record.created_at),
    )


def term_from_message(query: pb.QueryTerm) -> Term:
    """A query term from its message.

    Raises:
        InvalidArgument: no term kind is set.
    """
    weight = query.weight if query.HasField("weight") else 1.0
    match query.WhichOneof("kind"):
        case "text":
            return Text(query.text, weight)
        case "image":
            return Image(query.image, weight)
        case "asset_id":
            return Asset(query.asset_id, weight)
        case "vector":
            return Vector(tuple(query.vector.values), weight)
        case "direction":
            return Direction(query.direction, weight)
    raise InvalidArgument(
        "query term is empty: set one of text, image, asset_id, vector or direction"
    )


def example_from_message(example: pb.DirectionExample) -> Term:
    """A direction example (text, image or asset) as a term.

    Raises:
        InvalidArgument: no kind is set.
    """
    match example.WhichOneof("kind"):
        case "text":
            return Text(example.text)
        case "image":
            return Image(example.image)
        case "asset_id":
            return Asset(example.asset_id)
    raise InvalidArgument("a direction example is empty: set text, image or asset_id")


def filter_from_message(message: pb.Filter) -> Filter | None:
    """The validated filter of a request; None when it lets everything through.

    Raises:
        InvalidArgument: a part of the filter is malformed (the message names it).
    """
    flt = Filter(
        media_types=tuple(message.media_types),
        uri_prefix=message.uri_prefix,
        path_prefix=message.path_prefix,
        mtime=_time_range(message, "mtime"),
        created=_time_range(message, "created"),
        updated=_time_range(message, "updated"),
        size=SizeRange(
            message.size.min if message.size.HasField("min") else None,
            message.size.max if message.size.HasField("max") else None,
        ),
        metadata=tuple(
            _condition(c, f"filter.metadata[{i}]") for i, c in enumerate(message.metadata)
        ),
    )
    return None if flt.is_empty() else flt


def _time_range(message: pb.Filter, name: str) -> TimeRange:
    part: pb.TimeRange = getattr(message, name)
    return TimeRange(
        part.start.ToNanoseconds() if part.HasField("start") else None,
        part.end.ToNanoseconds() if part.HasField("end") else None,
    )


def _condition(message: pb.MetadataCondition, where: str) -> MetadataCondition:
    op = _OPS.get(message.op)
    if op is None:
        raise InvalidArgument(
            f"{where} ({message.key!r}): set op to EQUALS, NOT_EQUALS, IN, NOT_IN, EXISTS or "
            "NOT_EXISTS"
        )
    values: list[Scalar] = []
    for v in message.values:
        kind = v.WhichOneof("kind")
        if kind is None:
            raise InvalidArgument(
                f"{where} ({message.key!r}): a value is empty; set text, number or flag"
            )
        values.append(getattr(v, kind))
    return MetadataCondition(message.key, op, tuple(values))


def filter_message(flt: Filter) -> pb.Filter:
    """The Filter message of a filter."""
    out = pb.Filter(
        media_types=list(flt.media_types),
        uri_prefix=flt.uri_prefix,
        path_prefix=flt.path_prefix,
    )
    for name in ("mtime", "created", "updated"):
        part: TimeRange = getattr(flt, name)
        target: pb.TimeRange = getattr(out, name)
        if part.start_ns is not None:
            target.start.FromNanoseconds(part.start_ns)
        if part.end_ns is not None:
            target.end.FromNanoseconds(part.end_ns)
    if flt.size.min is not None:
        out.size.min = flt.size.min
    if flt.size.max is not None:
        out.size.max = flt.size.max
    for c in flt.metadata:
        out.metadata.append(
            pb.MetadataCondition(
                key=c.key, op=_OP_NUMBERS[c.op], values=[_value_message(v) for v in c.values]
            )
        )
    return out


def _value_message(value: Scalar) -> pb.MetadataValue:
    if isinstance(value, bool):
        return pb.MetadataValue(flag=value)
    if isinstance(value, str):
        return pb.MetadataValue(text=value)
    return pb.MetadataValue(number=float(value))
