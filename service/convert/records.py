"""Catalog records and search results as messages: assets, collections, directions, hits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb
from assetsearch_client.client import struct
from google.protobuf import timestamp_pb2

from latent.linalg import unit_or_zero
from latent.query.terms import describe

if TYPE_CHECKING:
    from latent.catalog import AssetRecord, CollectionInfo, DirectionRecord
    from latent.index.layers import LayeredIndex
    from latent.query.navigation import DensityReport
    from service.results import Composed, Found

STATES = {
    "indexed": pb.Asset.STATE_INDEXED,
    "failed": pb.Asset.STATE_FAILED,
    "deleted": pb.Asset.STATE_DELETED,
}


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
    c: CollectionInfo,
    index_size: int,
    index_seq: int,
    index: LayeredIndex | None = None,
    head_seq: int = 0,
) -> pb.Collection:
    """The Collection message, with the served index generation's size, seq and type.

    ``head_seq`` is the catalog's newest change-log seq of the collection: the lag of
    the served index is ``head_seq - index_seq``.
    """
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
        head_seq=head_seq,
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
    unit = unit_or_zero(record.vector)
    cosines = {
        o.name: float(unit @ unit_or_zero(o.vector)) for o in others if o.name != record.name
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


def explanation_message(
    composed: Composed, vector: np.ndarray, density: DensityReport | None, snapped: bool
) -> pb.Explanation:
    """Why a search's hits are what they are: its vector, its terms, its neighbourhood.

    Args:
        composed: The resolved query.
        vector: The vector that was searched (the composed one, or where it snapped to).
        density: The query's neighbourhood, when the collection is big enough to tell.
        snapped: Whether the query was moved to its neighbours' centroid.

    Returns:
        The Explanation message.
    """
    out = pb.Explanation(
        query_vector=pb.Vector(values=vector.tolist()), terms=[describe(t) for t in composed.terms]
    )
    if density is not None:
        out.density.CopyFrom(
            pb.Density(
                knn_similarity=density.knn_similarity,
                typical_similarity=density.typical_similarity,
                ratio=density.ratio,
                is_hole=density.is_hole,
                snapped=snapped,
            )
        )
    return out
