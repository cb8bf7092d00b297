"""Conversions between catalog records and protobuf messages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from google.protobuf import struct_pb2, timestamp_pb2

from latent.algebra import Term
from latent.catalog import AssetRecord, CollectionInfo, DirectionRecord
from latent.errors import InvalidArgument
from service._pb.assetsearch.v1 import search_pb2 as pb

if TYPE_CHECKING:
    from service.queries import Found

STATES = {"indexed": pb.Asset.INDEXED, "failed": pb.Asset.FAILED, "deleted": pb.Asset.DELETED}


def timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp:
    """A protobuf Timestamp (naive datetimes from SQLite are UTC)."""
    ts = timestamp_pb2.Timestamp()
    if value is not None:
        ts.FromDatetime(value if value.tzinfo else value.replace(tzinfo=dt.UTC))
    return ts


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    """A protobuf Struct from a JSON-like dict."""
    out = struct_pb2.Struct()
    out.update(values or {})
    return out


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


def collection_message(c: CollectionInfo, index_size: int, index_seq: int) -> pb.Collection:
    """The Collection message, with the served index generation's size and seq."""
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
    kind = query.WhichOneof("kind")
    weight = query.weight if query.HasField("weight") else 1.0
    if kind == "text":
        return Term("text", text=query.text, weight=weight)
    if kind == "image":
        return Term("image", image=query.image, weight=weight)
    if kind == "asset_id":
        return Term("asset", asset_id=query.asset_id, weight=weight)
    if kind == "vector":
        return Term("vector", vector=tuple(query.vector.values), weight=weight)
    if kind == "direction":
        return Term("direction", direction=query.direction, weight=weight)
    raise InvalidArgument(
        "query term is empty: set one of text, image, asset_id, vector or direction"
    )


def term_message(term: Term) -> pb.QueryTerm:
    """The QueryTerm message of a term."""
    if term.kind == "text":
        return pb.QueryTerm(text=term.text, weight=term.weight)
    if term.kind == "image":
        return pb.QueryTerm(image=term.image, weight=term.weight)
    if term.kind == "asset":
        return pb.QueryTerm(asset_id=term.asset_id, weight=term.weight)
    if term.kind == "direction":
        return pb.QueryTerm(direction=term.direction, weight=term.weight)
    return pb.QueryTerm(vector=pb.Vector(values=list(term.vector)), weight=term.weight)
