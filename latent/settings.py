"""One settings object, read from flags and ``ASSETSEARCH_*`` environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import ByteSize, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from latent.index.policy import FLAT_THRESHOLD, KINDS, IndexPolicy, IndexSpec

DEFAULT_MODEL = "builtin:demo"
DEFAULT_COLLECTION = "default"

MAX_FILE_BYTES = 2 * 2**30  # the indexer's default size cap: 2 GiB
MAX_MESSAGE_BYTES = 64 * 2**20  # the largest gRPC message either side accepts


class Settings(BaseSettings):
    """Configuration for every assetsearch process.

    Built once by the CLI (the composition root) and passed down by constructor.
    """

    model_config = SettingsConfigDict(env_prefix="ASSETSEARCH_", extra="ignore")

    data_dir: Path = Field(
        default=Path(".assetsearch"),
        description="Data directory: index snapshots and the default SQLite catalog.",
    )
    database_url: str | None = Field(
        default=None, description="Catalog URL; default: a SQLite file in the data dir."
    )
    model: str = Field(
        default=DEFAULT_MODEL, description="open_clip model spec for new collections."
    )
    collection: str = Field(
        default=DEFAULT_COLLECTION, description="Collection used when none is named."
    )
    host: str = Field(default="127.0.0.1", description="Address `serve` binds.")
    port: int = Field(default=50051, description="Port `serve` listens on; 0 picks a free one.")
    server: str = Field(
        default="127.0.0.1:50051", description="HOST:PORT of the server the client commands call."
    )
    batch_size: int = Field(default=32, ge=1, le=4096, description="Images per encoder batch.")
    poll_interval: float = Field(
        default=1.0, gt=0, description="Seconds between change-log polls in the server."
    )
    max_image_pixels: int = Field(
        default=64_000_000, ge=1, description="Pillow decompression-bomb limit."
    )
    max_file_bytes: ByteSize = Field(
        default=ByteSize(MAX_FILE_BYTES),
        gt=0,
        description="Largest file the indexer reads (e.g. 2GiB); a larger one becomes a failed "
        "asset, unread.",
    )
    max_top_k: int = Field(default=1000, ge=1, description="Most hits one call may ask for.")
    max_terms: int = Field(default=64, ge=1, description="Most terms in one query.")
    max_expression_chars: int = Field(
        default=4000, ge=1, description="Longest query expression, in characters."
    )
    max_steps: int = Field(
        default=100, ge=2, description="Most steps of one interpolation or traversal."
    )
    max_import_rows: int = Field(
        default=100_000, ge=1, description="Most rows in one ImportVectors batch."
    )
    max_message_bytes: ByteSize = Field(
        default=ByteSize(MAX_MESSAGE_BYTES),
        ge=1024,
        description="Largest gRPC message the server accepts (uploads above it stream in chunks).",
    )
    max_in_flight: int = Field(
        default=64,
        ge=1,
        description="Calls the server works on at once; one more gets RESOURCE_EXHAUSTED.",
    )
    shutdown_grace: float = Field(
        default=30.0, ge=0, description="Seconds SIGTERM waits for calls in flight to finish."
    )
    auth: Literal["required", "off"] | None = Field(
        default=None,
        description="API keys: required or off; unset: required unless `serve` binds loopback.",
    )
    insecure: bool = Field(
        default=False, description="Allow --auth off on an address other than loopback."
    )
    api_key: str | None = Field(
        default=None, description="API key the client commands send (Bearer token)."
    )
    tls_cert: Path | None = Field(default=None, description="Server certificate chain (PEM).")
    tls_key: Path | None = Field(default=None, description="Server private key (PEM).")
    tls_client_ca: Path | None = Field(
        default=None, description="CA (PEM) client certificates must chain to: mutual TLS."
    )
    tls_ca: Path | None = Field(
        default=None, description="CA (PEM) the client commands trust; set it to use TLS."
    )
    tls_client_cert: Path | None = Field(
        default=None, description="Client certificate (PEM) the client commands present."
    )
    tls_client_key: Path | None = Field(
        default=None, description="Private key (PEM) of the client certificate."
    )
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Port of the Prometheus /metrics; unset: off."
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="`serve` logs: one JSON object per line, or plain text."
    )
    log_level: str = Field(default="INFO", description="Logging level of `serve`.")
    library_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description=f"Folders index jobs may read, separated by {os.pathsep!r}; none: no jobs.",
    )
    instance: str | None = Field(
        default=None,
        description="This server's name among replicas (its jobs); default HOST:PORT.",
    )
    query_cache_size: int = Field(
        default=4096,
        ge=0,
        description="Text and image query embeddings the server keeps (LRU, exact); 0: none.",
    )
    threads: int = Field(
        default=0, ge=0, description="torch/FAISS threads; 0 keeps the library default."
    )
    search_threads: int = Field(
        default=1,
        ge=0,
        description="FAISS threads of one search request (requests already run in parallel, "
        "one per gRPC worker); 0 keeps FAISS' default.",
    )
    index_type: str | None = Field(
        default=None,
        description=f"Index type for collections without their own override ({', '.join(KINDS)}); "
        "unset: chosen by size and memory budget.",
    )
    index_memory_budget: ByteSize | None = Field(
        default=None,
        description="Memory one collection's index may use (e.g. 4GiB); picks SQ8 or PQ "
        "codes when float vectors would not fit. Unset: no limit.",
    )
    index_flat_threshold: int = Field(
        default=FLAT_THRESHOLD, ge=0, description="Below this many vectors search is exact."
    )

    @field_validator("library_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(p) for p in value.split(os.pathsep) if p]
        return value

    @field_validator("index_type")
    @classmethod
    def _known_index_type(cls, value: str | None) -> str | None:
        if value and value not in KINDS:
            raise ValueError(f"unknown index type {value!r}; use one of {', '.join(KINDS)}")
        return value or None

    def index_policy(self) -> IndexPolicy:
        """The index policy these settings describe."""
        return IndexPolicy(
            flat_threshold=self.index_flat_threshold,
            memory_budget=int(self.index_memory_budget) if self.index_memory_budget else None,
            override=IndexSpec(self.index_type) if self.index_type else None,
        )

    def apply_threads(self) -> None:
        """Apply ``threads`` to torch and FAISS (process-wide; 0 keeps their defaults)."""
        if self.threads:
            import faiss
            import torch

            torch.set_num_threads(self.threads)
            faiss.omp_set_num_threads(self.threads)

    def resolved_database_url(self) -> str:
        """The catalog URL: the configured one or a SQLite file under the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'catalog.sqlite3').resolve()}"
