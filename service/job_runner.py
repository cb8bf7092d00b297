"""The server's index-job runner: one worker thread runs queued jobs with the indexer.

A job runs inside the server process with the server's catalog and loaded models, apart
from the call that started it (a client that disconnects stops nothing). Its progress
reaches the job row at most every ``PROGRESS_INTERVAL`` seconds and at each change of
state; watchers in this process are woken by ``changed``, those of other replicas poll
the row. A server that stops cancels its running job after the current batch and marks
its jobs interrupted; one that starts marks interrupted the jobs it owned before a crash.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TYPE_CHECKING

from indexer.pipeline import Indexer
from latent.catalog.jobs import (
    CANCELLED,
    FAILED,
    INTERRUPTED,
    SUCCEEDED,
    JobProgress,
    JobRecord,
)
from latent.errors import AssetSearchError, Unavailable
from service.library_roots import LibraryRoots

if TYPE_CHECKING:
    from latent.catalog import Catalog
    from latent.models.encoders import EncoderCache
    from latent.settings import Settings

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.5  # seconds between progress writes of a running job
STOP_JOIN_SECONDS = 300.0  # a batch takes seconds; never hang a shutdown forever
STOPPING = "the server is stopping: start or resume the job on another replica"


class JobRunner:
    """Runs the index jobs this server instance owns, one at a time, in queue order."""

    def __init__(self, settings: Settings, catalog: Catalog, encoders: EncoderCache) -> None:
        self.settings = settings
        self.catalog = catalog
        self.encoders = encoders
        self.roots = LibraryRoots(settings.library_roots)
        self.instance = ""
        self.progress_interval = PROGRESS_INTERVAL
        self.changed = threading.Condition()  # notified at every write of a job row
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._current: int | None = None
        self._cancel = threading.Event()
        self.stopping = False

    def start(self, instance: str) -> None:
        """Take this instance's name, mark its leftover jobs interrupted, start the worker."""
        self.instance = instance
        stale = self.catalog.jobs.mark_interrupted(instance)
        if stale:
            log.warning(
                "%d index jobs of %s were left by a stopped server: interrupted", stale, instance
            )
        self._thread = threading.Thread(target=self._work, name="index-jobs", daemon=True)
        self._thread.start()

    def check_running(self) -> None:
        """Refuse new work while the server stops.

        Raises:
            Unavailable: the server is stopping.
        """
        if self.stopping:
            raise Unavailable(STOPPING)

    def submit(self, job: JobRecord) -> None:
        """Queue a job (its row is queued, owned by this instance).

        Raises:
            Unavailable: the server is stopping (the job is marked interrupted).
        """
        if self.stopping or self._thread is None:
            self.catalog.jobs.mark_interrupted(self.instance, [job.id])  # resumable later
            raise Unavailable(STOPPING)
        self._queue.put(job.id)
        self.notify()

    @property
    def idle(self) -> bool:
        """No job running and none waiting in this runner's queue."""
        return self._current is None and self._queue.empty()

    def cancel(self, job_id: int) -> bool:
        """Signal the job, when this runner runs it now; False when it does not."""
        with self._lock:
            if self._current != job_id:
                return False
            self._cancel.set()
            return True

    def notify(self) -> None:
        """Wake the watchers of this process: a job row changed."""
        with self.changed:
            self.changed.notify_all()

    def stop(self) -> None:
        """Cancel the running job after its current batch and mark every job of ours interrupted."""
        with self._lock:
            self.stopping = True
            self._cancel.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=STOP_JOIN_SECONDS)
        if self.instance:
            self.catalog.jobs.mark_interrupted(self.instance)
        self.notify()

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None or self.stopping:
                return
            try:
                self._run(job_id)
            except Exception:  # noqa: BLE001 - a bad job costs that job, never the worker
                log.exception("index job %d: the runner failed", job_id)

    def _run(self, job_id: int) -> None:
        with self._lock:
            if self.stopping:
                return
            job = self.catalog.jobs.claim_job(job_id, self.instance)
            if job is None:
                return  # cancelled while queued, or run elsewhere
            self._current = job_id
            self._cancel = cancel = threading.Event()
        self.notify()
        report = _Reporter(self, job_id, cancel)
        state, error = self._index(job, report, cancel)
        with self._lock:
            self._current = None
            if state == CANCELLED and self.stopping:
                state = INTERRUPTED
        if not self.catalog.jobs.finish_job(job_id, self.instance, state, report.last, error):
            log.info("index job %d was ended elsewhere (cancelled) before it finished", job_id)
        log.info("index job %d %s: %s", job_id, state, error or _counts(report.last))
        self.notify()

    def _index(
        self, job: JobRecord, report: _Reporter, cancel: threading.Event
    ) -> tuple[str, str | None]:
        """Run the indexer over the job's paths; returns the end state and error."""
        try:
            paths = self.roots.resolve_all(job.paths)  # again: a link may have changed since
            collection = self.catalog.collection(job.collection)
            indexer = Indexer(
                self.catalog,
                self.encoders.get,
                collection.name,
                collection.model_spec,
                batch_size=self.settings.batch_size,
                max_pixels=self.settings.max_image_pixels,
                max_file_bytes=int(self.settings.max_file_bytes),
                exclude=[self.settings.data_dir],
                retry_failed=job.retry_failed,
                on_progress=report.update,
                cancel=cancel,
            )
            summary = indexer.run(paths)
        except AssetSearchError as exc:
            return FAILED, str(exc)
        except Exception as exc:  # noqa: BLE001 - recorded on the job; the server goes on
            log.exception("index job %d failed", job.id)
            return FAILED, f"{type(exc).__name__}: {exc}"
        return (CANCELLED if summary.cancelled else SUCCEEDED), None


class _Reporter:
    """Writes a running job's progress to its row, at most every ``progress_interval`` s."""

    def __init__(self, runner: JobRunner, job_id: int, cancel: threading.Event) -> None:
        self.runner, self.job_id, self.cancel = runner, job_id, cancel
        self.last = JobProgress()
        self._written = 0.0

    def update(self, progress: JobProgress) -> None:
        self.last = progress
        now = time.monotonic()
        if now - self._written < self.runner.progress_interval:
            return
        self._written = now
        runner = self.runner
        if not runner.catalog.jobs.update_progress(self.job_id, runner.instance, progress):
            log.info("index job %d was cancelled elsewhere; stopping it", self.job_id)
            self.cancel.set()
        runner.notify()


def _counts(p: JobProgress) -> str:
    return (
        f"{p.files_done}/{p.files_total} files: indexed {p.indexed}, unchanged {p.unchanged}, "
        f"failed {p.failed}, deleted {p.deleted}"
    )
