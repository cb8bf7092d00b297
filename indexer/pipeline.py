"""The indexing run: diff a library against the catalog, then decode, encode, commit in batches."""

from __future__ import annotations

import io
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from indexer.scan import ScannedFile, resolve_root, root_prefix, scan
from latent.catalog import AssetWrite, Catalog, CollectionInfo, FileState
from latent.errors import FailedPrecondition
from latent.hashing import bytes_sha256, file_sha256
from latent.media.images import DecodedImage, DecodeError, decode_image_file
from latent.models.encoders import Encoder

log = logging.getLogger(__name__)

EncoderFactory = Callable[[str], Encoder]
A = TypeVar("A")
R = TypeVar("R")


@dataclass
class Summary:
    """What a run did; ``str`` gives the one-line summary the CLI prints."""

    indexed: int = 0
    unchanged: int = 0
    failed: int = 0
    deleted: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"indexed {self.indexed}, unchanged {self.unchanged}, failed {self.failed}, "
            f"deleted {self.deleted} in {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class _Prepared:
    """A file read, hashed and decoded (or failed) off the encoding thread."""

    file: ScannedFile
    content_hash: str | None
    image: DecodedImage | None
    error: str | None


class Indexer:
    """Indexes library roots into one collection of the catalog."""

    def __init__(
        self,
        catalog: Catalog,
        encoder_factory: EncoderFactory,
        collection: str,
        model_spec: str,
        batch_size: int = 32,
        max_pixels: int = 64_000_000,
        progress: Callable[[int], None] | None = None,
        metadata: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        self.catalog = catalog
        self.encoder_factory = encoder_factory
        self.collection_name = collection
        self.model_spec = model_spec
        self.batch_size = batch_size
        self.max_pixels = max_pixels
        self.progress = progress
        self.metadata = metadata or {}  # uri -> user metadata; files not named keep theirs
        self._encoder: Encoder | None = None
        self._known: dict[str, FileState] = {}

    def _collection(self, model_explicit: bool) -> CollectionInfo:
        existing = self.catalog.find_collection(self.collection_name)
        if existing is not None:
            if model_explicit and existing.model_spec != self.model_spec:
                raise FailedPrecondition(
                    f"collection {existing.name!r} is embedded with {existing.model_spec!r}, not "
                    f"{self.model_spec!r}; re-embedding with a new model needs a new --collection"
                )
            return existing
        encoder = self.encoder(self.model_spec)
        return self.catalog.ensure_collection(self.collection_name, encoder.spec, encoder.dim)

    def encoder(self, spec: str) -> Encoder:
        """The run's encoder, loaded on first need (an unchanged library loads none)."""
        if self._encoder is None:
            self._encoder = self.encoder_factory(spec)
        return self._encoder

    def run(self, paths: Sequence[str | Path], model_explicit: bool = False) -> Summary:
        """Index every root: new and changed files are encoded, vanished ones deleted.

        Raises:
            NotFound: a root does not exist.
            FailedPrecondition: the collection belongs to another model.
        """
        started = time.monotonic()
        roots = [resolve_root(p) for p in paths]
        collection = self._collection(model_explicit)
        summary = Summary()
        for root in roots:
            self._index_root(collection, root, summary)
        summary.seconds = time.monotonic() - started
        return summary

    def _index_root(self, collection: CollectionInfo, root: Path, summary: Summary) -> None:
        known = self._known = self.catalog.file_states(collection.id, root_prefix(root))
        log.info("scanning %s: %d files known to the catalog", root, len(known))
        seen: set[str] = set()
        todo = self._diff(collection, scan(root), known, seen, summary)
        self._encode_and_commit(collection, todo, summary)
        self.catalog.set_metadata(
            {
                s.asset_id: self.metadata[uri]
                for uri, s in known.items()
                if uri in seen and uri in self.metadata and self.metadata[uri] != s.metadata
            }
        )
        vanished = [uri for uri, s in known.items() if uri not in seen and s.state != "deleted"]
        for start in range(0, len(vanished), 1000):
            chunk = vanished[start : start + 1000]
            log.info("committing %d vanished files as deleted", len(chunk))
            self.catalog.commit(collection, [], chunk)
        summary.deleted += len(vanished)

    def _diff(
        self,
        collection: CollectionInfo,
        files: Iterable[ScannedFile],
        known: dict[str, FileState],
        seen: set[str],
        summary: Summary,
    ) -> Iterator[ScannedFile]:
        """Yield files to encode; count and touch the unchanged ones."""
        for f in files:
            seen.add(f.uri)
            state = known.get(f.uri)
            if state is None or state.state == "deleted":
                yield f
            elif state.size == f.size and state.mtime_ns == f.mtime_ns:
                summary.unchanged += 1
                self._tick()
            elif state.size == f.size and state.content_hash == _safe_hash(f.path):
                self.catalog.touch(collection.id, f.uri, f.mtime_ns)  # same bytes, new mtime
                summary.unchanged += 1
                self._tick()
            else:
                yield f

    def _tick(self, n: int = 1) -> None:
        if self.progress:
            self.progress(n)

    def _prepare(self, f: ScannedFile) -> _Prepared:
        try:
            data = f.path.read_bytes()
        except OSError as exc:
            return _Prepared(f, None, None, f"cannot read file: {exc.strerror or exc}")
        content_hash = bytes_sha256(data)
        try:
            return _Prepared(
                f, content_hash, decode_image_file(io.BytesIO(data), self.max_pixels), None
            )
        except DecodeError as exc:
            return _Prepared(f, content_hash, None, str(exc))

    def _encode_and_commit(
        self, collection: CollectionInfo, todo: Iterator[ScannedFile], summary: Summary
    ) -> None:
        # Two threads read and decode at most two batches ahead while this thread encodes
        # and commits: memory stays bounded however large the library.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode") as pool:
            batch: list[_Prepared] = []
            for prepared in _bounded_map(pool, self._prepare, todo, 2 * self.batch_size):
                batch.append(prepared)
                if len(batch) >= self.batch_size:
                    self._commit_batch(collection, batch, summary)
                    batch = []
            if batch:
                self._commit_batch(collection, batch, summary)

    def _metadata_of(self, uri: str) -> dict[str, Any]:
        if uri in self.metadata:
            return self.metadata[uri]
        known = self._known.get(uri)
        return known.metadata if known else {}

    def _commit_batch(
        self, collection: CollectionInfo, batch: list[_Prepared], summary: Summary
    ) -> None:
        images = [p.image.image for p in batch if p.image is not None]
        encoder = self.encoder(collection.model_spec) if images else None
        rows = iter(encoder.encode_images(images) if encoder else [])
        writes = []
        for p in batch:
            f = p.file
            write = AssetWrite(
                f.uri,
                f.media_type,
                f.size,
                f.mtime_ns,
                p.content_hash,
                metadata=self._metadata_of(f.uri),
            )
            if p.image is None:
                write.state, write.error = "failed", p.error
                summary.failed += 1
                summary.failures.append((str(f.path), p.error or "unknown error"))
                log.info("failed: %s: %s", f.path, p.error)
            else:
                write.width, write.height = p.image.width, p.image.height
                write.vectors = next(rows)[None, :]
                summary.indexed += 1
            writes.append(write)
        log.info("committing %d files", len(writes))
        self.catalog.commit(collection, writes)
        self._tick(len(batch))


def _bounded_map(
    pool: ThreadPoolExecutor, fn: Callable[[A], R], items: Iterable[A], window: int
) -> Iterator[R]:
    """Like ``pool.map``, in order, but never more than ``window`` calls ahead."""
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _safe_hash(path: Path) -> str | None:
    try:
        return file_sha256(path)
    except OSError:
        return None
