"""The catalog's plain records (collections, files, assets, directions, changes) and blobs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from latent.catalog.schema import INDEXED

STORE_DTYPE = np.dtype("<f2")  # embeddings are stored as float16: half the bytes, ~1e-3 error


@dataclass(frozen=True)
class CollectionInfo:
    """A collection as the rest of the system sees it."""

    id: int
    name: str
    model_spec: str
    dim: int
    metric: str
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class FileState:
    """What the catalog knows of a file, for the indexer's diff."""

    asset_id: int
    size: int
    mtime_ns: int
    content_hash: str | None
    state: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AssetRecord:
    """A full asset row."""

    id: int
    collection: str
    uri: str
    content_hash: str | None
    media_type: str
    size: int
    mtime_ns: int
    width: int | None
    height: int | None
    state: str
    error: str | None
    metadata: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass
class AssetWrite:
    """An asset to insert or replace, with its vectors (none for a failed file)."""

    uri: str
    media_type: str
    size: int
    mtime_ns: int
    content_hash: str | None
    state: str = INDEXED
    width: int | None = None
    height: int | None = None
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    vectors: np.ndarray | None = None  # shape (n, dim)
    segments: Sequence[tuple[float | None, float | None]] | None = None


@dataclass(frozen=True)
class DirectionRecord:
    """A named direction: its raw vector (not normalised), norm, examples and constraints."""

    name: str
    vector: np.ndarray
    norm: float
    examples: dict[str, Any]
    orthogonal_to: tuple[str, ...] = ()
    created_at: dt.datetime | None = None


@dataclass(frozen=True)
class ChangeBatch:
    """Change-log entries after a ``seq``: ids removed, then ids and vectors added.

    ``updated`` holds embeddings whose asset row changed (metadata, mtime) while the
    vector stayed: nothing for the index, but a cached copy of the asset is stale.
    """

    last_seq: int
    removed: np.ndarray  # embedding ids, int64
    added_ids: np.ndarray  # int64
    added_vectors: np.ndarray  # float32, (n, dim)
    updated: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def encode_vector(vector: np.ndarray) -> bytes:
    """Serialise one vector for the ``embeddings.vector`` blob."""
    return np.asarray(vector, dtype=STORE_DTYPE).tobytes()


def decode_vectors(blobs: Sequence[bytes], dtypes: Sequence[str], dim: int) -> np.ndarray:
    """Deserialise blobs into a float32 matrix of unit rows, shape (len(blobs), dim)."""
    out = np.empty((len(blobs), dim), dtype=np.float32)
    for i, (blob, dtype) in enumerate(zip(blobs, dtypes, strict=True)):
        out[i] = np.frombuffer(blob, dtype=np.dtype(dtype))
    # float16 rounding leaves norms of 1 +- 1e-4: re-normalise so scores are true cosines.
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


def decode_rows(rows: Sequence[Any], dim: int) -> np.ndarray:
    """The unit float32 vectors of rows that have ``vector`` and ``dtype`` columns."""
    return decode_vectors([r.vector for r in rows], [r.dtype for r in rows], dim)
