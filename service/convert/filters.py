"""Filter messages <-> the validated domain Filter; loads no SQL, FAISS or torch (the CLI does)."""

from __future__ import annotations

from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb

from latent.errors import InvalidArgument
from latent.query.filters import Filter, MetadataCondition, MetadataOp, Scalar, SizeRange, TimeRange

_OPS: dict[pb.MetadataCondition.Op, MetadataOp] = {
    pb.MetadataCondition.OP_EQUALS: "eq",
    pb.MetadataCondition.OP_NOT_EQUALS: "ne",
    pb.MetadataCondition.OP_IN: "in",
    pb.MetadataCondition.OP_NOT_IN: "not_in",
    pb.MetadataCondition.OP_EXISTS: "exists",
    pb.MetadataCondition.OP_NOT_EXISTS: "not_exists",
}
_OP_NUMBERS = {name: number for number, name in _OPS.items()}
_TIME_RANGES = ("mtime", "created", "updated")


def filter_from_message(message: pb.Filter) -> Filter | None:
    """The validated filter of a request; None when it lets everything through.

    Raises:
        InvalidArgument: a part of the filter is malformed (the message names it).
    """
    flt = Filter(
        media_types=tuple(message.media_types),
        uri_prefix=message.uri_prefix,
        path_prefix=message.path_prefix,
        mtime=_time_range(message.mtime),
        created=_time_range(message.created),
        updated=_time_range(message.updated),
        size=SizeRange(
            message.size.min if message.size.HasField("min") else None,
            message.size.max if message.size.HasField("max") else None,
        ),
        metadata=tuple(
            _condition(c, f"filter.metadata[{i}]") for i, c in enumerate(message.metadata)
        ),
    )
    return None if flt.is_empty() else flt


def _time_range(part: pb.TimeRange) -> TimeRange:
    return TimeRange(
        part.start.ToNanoseconds() if part.HasField("start") else None,
        part.end.ToNanoseconds() if part.HasField("end") else None,
    )


def _condition(message: pb.MetadataCondition, where: str) -> MetadataCondition:
    op = _OPS.get(message.op)
    if op is None:
        raise InvalidArgument(
            f"{where} ({message.key!r}): set op to OP_EQUALS, OP_NOT_EQUALS, OP_IN, OP_NOT_IN, "
            "OP_EXISTS or OP_NOT_EXISTS"
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
    for name in _TIME_RANGES:
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
