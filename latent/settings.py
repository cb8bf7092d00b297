"""One settings object, read from flags and ``ASSETSEARCH_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "builtin:demo"
DEFAULT_COLLECTION = "default"


class Settings(BaseSettings):
    """Configuration for every assetsearch process.

    Built once by the CLI (the composition root) and passed down by constructor.
    """

    model_config = SettingsConfigDict(env_prefix="ASSETSEARCH_", extra="ignore")

    data_dir: Path = Field(
        default=Path(".assetsearch"), description="Snapshots and the SQLite file."
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data dir."
    )
    model: str = Field(
        default=DEFAULT_MODEL, description="open_clip model spec for new collections."
    )
    collection: str = Field(
        default=DEFAULT_COLLECTION, description="Collection used when none is named."
    )
    host: str = "127.0.0.1"
    port: int = 50051
    server: str = Field(default="127.0.0.1:50051", description="Address the CLI client calls.")
    batch_size: int = Field(default=32, ge=1, le=4096, description="Images per encoder batch.")
    poll_interval: float = Field(
        default=1.0, gt=0, description="Seconds between change-log polls in the server."
    )
    max_image_pixels: int = Field(
        default=64_000_000, ge=1, description="Pillow decompression-bomb limit."
    )
    max_top_k: int = Field(default=1000, ge=1)
    threads: int = Field(default=0, ge=0, description="torch/FAISS threads; 0 keeps the default.")

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
