"""SQLAlchemy 2.0 typed tables of the catalog: collections, assets, embeddings, change log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments INTEGER PRIMARY KEY; BigInteger elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")

INDEXED, FAILED, DELETED = "indexed", "failed", "deleted"
ASSET_STATES = (INDEXED, FAILED, DELETED)  # every state an asset row can be in


class Base(DeclarativeBase):
    """Declarative base of the catalog tables."""


def _now() -> Any:
    return func.now()


class Collection(Base):
    """A set of assets embedded by one model, with that model's dimension and metric."""

    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    model_spec: Mapped[str] = mapped_column(String(1000))
    dim: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(16), default="ip")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class IndexOptions(Base):
    """A collection's index override (``IndexSpec`` fields); no row lets the policy choose.

    A table of its own, so the ``collections`` table reads the same at every revision.
    """

    __tablename__ = "index_options"

    collection_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Asset(Base):
    """One media file of a collection and what is known about it."""

    __tablename__ = "assets"
    __table_args__ = (
        UniqueConstraint("collection_id", "uri", name="uq_assets_collection_uri"),
        Index("ix_assets_collection_state", "collection_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    uri: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))  # one of ASSET_STATES
    error: Mapped[str | None] = mapped_column(Text)
    user_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=_now(), onupdate=_now()
    )


class Embedding(Base):
    """A vector of an asset (a video segment has its own); its id is the FAISS id."""

    __tablename__ = "embeddings"
    __table_args__ = (
        Index("ix_embeddings_collection", "collection_id", "id"),
        Index("ix_embeddings_asset", "asset_id"),
        {"sqlite_autoincrement": True},  # never reuse an id: FAISS ids must stay unique
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    dtype: Mapped[str] = mapped_column(String(8))  # numpy dtype string: "<f2" or "<f4"
    segment_start: Mapped[float | None] = mapped_column(Float)
    segment_end: Mapped[float | None] = mapped_column(Float)


class Direction(Base):
    """A named direction of a collection: mean(positive) - mean(negative), float32, unnormalised."""

    __tablename__ = "directions"
    __table_args__ = (
        UniqueConstraint("collection_id", "name", name="uq_directions_collection_name"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    norm: Mapped[float] = mapped_column(Float)
    examples: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"positive": [...], "negative": [...]}
    orthogonal_to: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Change(Base):
    """One entry of the change log; ``seq`` orders every add and delete of a collection."""

    __tablename__ = "changes"
    __table_args__ = (
        Index("ix_changes_collection_seq", "collection_id", "seq"),
        {"sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    op: Mapped[str] = mapped_column(String(8))  # "add" | "delete" | "update" (row only)
    embedding_id: Mapped[int] = mapped_column(BigInteger)
    asset_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class ApiKey(Base):
    """An API key: the public ``key_id`` and the SHA-256 of its secret, never the secret."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(8))  # "read" | "write" | "admin"
    collections: Mapped[list[str] | None] = mapped_column(JSON)  # None: every collection
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class IndexJob(Base):
    """An index job the server runs over paths under its library roots, with its progress."""

    __tablename__ = "index_jobs"
    __table_args__ = (Index("ix_index_jobs_state", "state"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    paths: Mapped[list[str]] = mapped_column(JSON)
    retry_failed: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(16))
    runner: Mapped[str | None] = mapped_column(String(200))  # the server instance running it
    files_total: Mapped[int] = mapped_column(BigInteger, default=0)
    files_done: Mapped[int] = mapped_column(BigInteger, default=0)
    indexed: Mapped[int] = mapped_column(BigInteger, default=0)
    unchanged: Mapped[int] = mapped_column(BigInteger, default=0)
    failed: Mapped[int] = mapped_column(BigInteger, default=0)
    deleted: Mapped[int] = mapped_column(BigInteger, default=0)
    current_file: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
