"""The indexing run: diff a library against the catalog, then decode, encode, commit in batches."""

from __future__ import annotations

import io
import logging
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from indexer import embed
from indexer.scan import ScannedFile, resolve_root, root_prefix, scan
from latent.catalog import AssetWrite, Catalog, CollectionInfo, FileState
from latent.catalog.jobs import JobProgress
from latent.errors import FailedPrecondition
from latent.hashing import bytes_sha256, file_sha256
from latent.media.images import DecodedImage
from latent.models.encoders import Encoder
from latent.settings import MAX_FILE_BYTES

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
    cancelled: bool = False  # stopped early by the run's cancel event; nothing deleted

    def __str__(self) -> str:
        return (
            f"indexed {self.indexed}, unchanged {self.unchanged}, failed {self.failed}, "
            f"deleted {self.deleted} in {self.seconds:.1f} s"
            + (", cancelled" if self.cancelled else "")
        )


@dataclass(frozen=True)
class _Prepared:
    """A file read, hashed and decoded (or failed) off the encoding thread.

    ``size`` and ``mtime_ns`` are those of the bytes actually read, which differ from the
    scan's when the file was rewritten in between; ``gone`` says it vanished before the read.
    """

    file: ScannedFile
    content_hash: str | None
    image: DecodedImage | None
    error: str | None
    size: int
    mtime_ns: int
    gone: bool = False


class _Refused(Exception):
    """A file the indexer will not read; the message is stored as the asset's error."""


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
        max_file_bytes: int = MAX_FILE_BYTES,
        exclude: Sequence[Path] = (),
        retry_failed: bool = False,
        on_progress: Callable[[JobProgress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.catalog = catalog
        self.encoder_factory = encoder_factory
        self.collection_name = collection
        self.model_spec = model_spec
        self.batch_size = batch_size
        self.max_pixels = max_pixels
        self.max_file_bytes = max_file_bytes
        self.exclude = exclude  # folders never scanned, such as the data directory
        # Decode failed files again even when unchanged: a fixed decoder or a raised limit
        # can read them now, though their size and mtime still match the catalog's.
        self.retry_failed = retry_failed
        self.progress = progress
        self.metadata = metadata or {}  # uri -> user metadata; files not named keep theirs
        # Called with the run's progress at every file handled (the caller throttles);
        # with it, a second thread counts the files first so the total is known early.
        self.on_progress = on_progress
        # Set it to stop the run after the batch being committed: nothing is left half
        # written and, the scan being incomplete, no asset is marked deleted.
        self.cancel = cancel
        self._encoder: Encoder | None = None
        self._known: dict[str, FileState] = {}
        self._run = _RunState()

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
        self._run = _RunState(summary)
        if self.on_progress:
            threading.Thread(target=self._count, args=(roots,), name="count", daemon=True).start()
        try:
            for root in roots:
                if self._cancelled():
                    break
                self._index_root(collection, root, summary)
            self._run.scanned = not self._run.stopped
        finally:
            self._run.finished = True
        summary.cancelled = self._run.stopped
        summary.seconds = time.monotonic() - started
        self._report()
        return summary

    def _cancelled(self) -> bool:
        """True (and the run marked stopped) once the cancel event is set."""
        if self.cancel is not None and self.cancel.is_set():
            self._run.stopped = True
        return self._run.stopped

    def _count(self, roots: Sequence[Path]) -> None:
        """Count the files of ``roots`` ahead of the run, for the progress total."""
        run = self._run
        for root in roots:
            for _ in scan(root, self.exclude):
                if run.finished or run.stopped:
                    return
                run.counted += 1

    def _report(self) -> None:
        if self.on_progress is None:
            return
        run, s = self._run, self._run.summary
        total = run.found if run.scanned else max(run.counted, run.found)
        self.on_progress(
            JobProgress(total, run.done, s.indexed, s.unchanged, s.failed, s.deleted, run.current)
        )

    def _index_root(self, collection: CollectionInfo, root: Path, summary: Summary) -> None:
        known = self._known = self.catalog.file_states(collection.id, root_prefix(root))
        log.info("scanning %s: %d files known to the catalog", root, len(known))
        seen: set[str] = set()
        todo = self._diff(collection, scan(root, self.exclude), known, seen, summary)
        seen -= self._encode_and_commit(collection, todo, summary)
        if self._run.stopped:
            return  # the scan is incomplete: files not seen yet have not vanished
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
        self._report()

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
            if self._cancelled():
                return
            seen.add(f.uri)
            self._run.found += 1
            self._run.current = str(f.path)
            state = known.get(f.uri)
            if state is None or state.state == "deleted" or self._retry(state):
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

    def _retry(self, state: FileState) -> bool:
        return self.retry_failed and state.state == "failed"

    def _tick(self, n: int = 1) -> None:
        self._run.done += n
        if self.progress:
            self.progress(n)
        self._report()

    def _prepare(self, f: ScannedFile) -> _Prepared:
        try:
            data, st = _read_regular(f.path, self.max_file_bytes)
        except FileNotFoundError:
            log.info("skipped %s: deleted before it could be read", f.path)
            return _Prepared(f, None, None, None, f.size, f.mtime_ns, gone=True)
        except _Refused as exc:
            return _Prepared(f, None, None, str(exc), f.size, f.mtime_ns)
        except OSError as exc:
            reason = f"cannot read file: {exc.strerror or exc}"
            return _Prepared(f, None, None, reason, f.size, f.mtime_ns)
        content_hash = bytes_sha256(data)
        image, error = self._decode(f, data)
        return _Prepared(f, content_hash, image, error, st.st_size, st.st_mtime_ns)

    def _decode(self, f: ScannedFile, data: bytes) -> tuple[DecodedImage | None, str | None]:
        decoded = embed.decode(io.BytesIO(data), len(data), self.max_pixels, str(f.path))
        return (None, decoded) if isinstance(decoded, str) else (decoded, None)

    def _encode_and_commit(
        self, collection: CollectionInfo, todo: Iterator[ScannedFile], summary: Summary
    ) -> set[str]:
        """Encode and commit ``todo``; return the uris of files that vanished before the read."""
        gone: set[str] = set()
        # Two threads read and decode at most two batches ahead while this thread encodes
        # and commits: memory stays bounded however large the library.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode") as pool:
            batch: list[_Prepared] = []
            for prepared in _bounded_map(pool, self._prepare, todo, 2 * self.batch_size):
                if self._cancelled():
                    pool.shutdown(cancel_futures=True)  # the files read ahead are dropped
                    return gone
                self._run.current = str(prepared.file.path)
                if prepared.gone:
                    gone.add(prepared.file.uri)
                    self._tick()
                    continue
                batch.append(prepared)
                if len(batch) >= self.batch_size:
                    self._commit_batch(collection, batch, summary)
                    batch = []
            if batch:
                self._commit_batch(collection, batch, summary)
        return gone

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
                p.size,
                p.mtime_ns,
                p.content_hash,
                metadata=self._metadata_of(f.uri),
            )
            if p.image is None:
                write.state, write.error = "failed", p.error
                summary.failed += 1
                summary.failures.append((str(f.path), p.error or "unknown error"))
                log.info("failed: %s: %s", f.path, p.error)
            else:
                embed.set_image(write, p.image, next(rows))
                summary.indexed += 1
            writes.append(write)
        log.info("committing %d files", len(writes))
        self.catalog.commit(collection, writes)
        self._tick(len(batch))


@dataclass
class _RunState:
    """What one run has done so far, for its progress reports (read by the caller's thread)."""

    summary: Summary = field(default_factory=Summary)
    found: int = 0  # files the run's scan has reached
    counted: int = 0  # files the counting thread has found
    done: int = 0  # files handled: committed, unchanged or gone
    current: str | None = None
    scanned: bool = False  # every root scanned to the end: ``found`` is the total
    stopped: bool = False  # the cancel event stopped the run
    finished: bool = False


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


def _read_regular(path: Path, limit: int) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file of at most ``limit`` bytes, and its status when read.

    The type is checked before opening (a FIFO or device is never opened) and again on the
    open descriptor, in case the name was replaced in between.

    Raises:
        _Refused: not a regular file, or larger than ``limit``.
        OSError: it cannot be opened or read (``FileNotFoundError``: it is gone).
    """
    _check_regular(os.stat(path), limit)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(fd, "rb") as fh:
        st = os.fstat(fd)
        _check_regular(st, limit)
        data = fh.read(limit + 1)
    if len(data) > limit:  # it grew while being read
        raise _Refused(
            f"file too large: above the {_human(limit)} limit (ASSETSEARCH_MAX_FILE_BYTES)"
        )
    return data, st


def _check_regular(st: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise _Refused("not a regular file (a FIFO, socket or device); never read")
    if st.st_size > limit:
        raise _Refused(
            f"file too large: {_human(st.st_size)} is above the {_human(limit)} limit "
            "(ASSETSEARCH_MAX_FILE_BYTES)"
        )


def _human(size: int) -> str:
    """A byte count for people: 21474836480 gives '20.0 GiB'."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB"):
        if value < 1024:
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _safe_hash(path: Path) -> str | None:
    try:
        return file_sha256(path)
    except OSError:
        return None
