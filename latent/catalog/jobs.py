"""Index jobs: the rows a server's job runner works through, with their progress.

A job's life, in its ``state`` column::

    queued ──claim──▶ running ──finish──▶ succeeded | failed | cancelled | interrupted
      │                  │
      └──cancel──▶ cancelled ◀──cancel (by another replica)
    cancelled | failed | interrupted ──resume──▶ queued

Each change is one conditional UPDATE, so two replicas never both claim a job, and a
runner learns that another replica cancelled its job when its next progress write
matches no row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update

from latent.catalog.engine import Database
from latent.catalog.schema import Collection, IndexJob
from latent.errors import NotFound

QUEUED, RUNNING, SUCCEEDED = "queued", "running", "succeeded"
FAILED, CANCELLED, INTERRUPTED = "failed", "cancelled", "interrupted"
ACTIVE = (QUEUED, RUNNING)  # states a runner still owns
TERMINAL = (SUCCEEDED, FAILED, CANCELLED, INTERRUPTED)
RESUMABLE = (FAILED, CANCELLED, INTERRUPTED)


def utc_now() -> dt.datetime:
    """Now, timezone-aware UTC, to the microsecond (SQL's now() is seconds on SQLite)."""
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands timestamps back naive; they were written in UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class JobProgress:
    """How far a run has come: files found and handled, the counts, the file in hand."""

    files_total: int = 0
    files_done: int = 0
    indexed: int = 0
    unchanged: int = 0
    failed: int = 0
    deleted: int = 0
    current_file: str | None = None


@dataclass(frozen=True)
class JobRecord:
    """An index job row, with its collection's name."""

    id: int
    collection_id: int
    collection: str
    paths: list[str]
    retry_failed: bool
    state: str
    runner: str | None
    progress: JobProgress
    error: str | None
    created_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


_ZERO = {f: 0 for f in ("files_total", "files_done", "indexed", "unchanged", "failed", "deleted")}


class Jobs:
    """Creating, claiming, updating and listing index jobs."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create_job(
        self, collection_id: int, paths: Sequence[str], retry_failed: bool, runner: str
    ) -> JobRecord:
        """A new job in state ``queued``, owned by the server instance ``runner``."""
        values = dict(
            collection_id=collection_id,
            paths=list(paths),
            retry_failed=retry_failed,
            state=QUEUED,
            runner=runner,
            **_ZERO,
        )
        with self._db.writer.begin() as conn:
            job_id = conn.execute(insert(IndexJob).values(**values).returning(IndexJob.id)).one()[0]
        return self.job(job_id)

    def job(self, job_id: int) -> JobRecord:
        """One job by id.

        Raises:
            NotFound: there is no job with that id.
        """
        with self._db.engine.connect() as conn:
            row = conn.execute(_select().where(IndexJob.id == job_id)).first()
        if row is None:
            raise NotFound(f"index job {job_id} does not exist (see `assetsearch job list`)")
        return _record(row)

    def jobs(self, collections: Sequence[str] | None = None, limit: int = 50) -> list[JobRecord]:
        """At most ``limit`` jobs (of the named collections, or all), newest first."""
        stmt = _select().order_by(IndexJob.id.desc()).limit(limit)
        if collections is not None:
            stmt = stmt.where(Collection.name.in_(list(collections)))
        with self._db.engine.connect() as conn:
            return [_record(r) for r in conn.execute(stmt)]

    def claim_job(self, job_id: int, runner: str) -> JobRecord | None:
        """Move a job queued for ``runner`` to ``running``, its counters reset.

        Returns:
            The running job, or None when it is no longer queued for ``runner``
            (cancelled meanwhile, or resumed by another replica, which runs it).
        """
        values = dict(state=RUNNING, started_at=utc_now(), finished_at=None)
        changed = self._set(job_id, (QUEUED,), runner, values | _ZERO | dict(current_file=None))
        return self.job(job_id) if changed else None

    def update_progress(self, job_id: int, runner: str, progress: JobProgress) -> bool:
        """Write a running job's progress (one UPDATE).

        Returns:
            False when the job is no longer running for ``runner`` (cancelled elsewhere).
        """
        return self._set(job_id, (RUNNING,), runner, _progress_values(progress))

    def finish_job(
        self,
        job_id: int,
        runner: str,
        state: str,
        progress: JobProgress,
        error: str | None = None,
    ) -> bool:
        """End a running job of ``runner`` in a terminal ``state`` with its last progress.

        Returns:
            False when it was not running for ``runner`` (another replica ended it).
        """
        values = _progress_values(progress) | dict(current_file=None)
        values |= dict(state=state, error=error, finished_at=utc_now())
        return self._set(job_id, (RUNNING,), runner, values)

    def cancel_job(self, job_id: int) -> bool:
        """Mark a queued or running job ``cancelled`` in the row (its runner stops on seeing it).

        Returns:
            False when it was in neither state.
        """
        values = dict(state=CANCELLED, finished_at=utc_now(), current_file=None)
        return self._set(job_id, ACTIVE, None, values)

    def resume_job(self, job_id: int, runner: str) -> bool:
        """Queue a cancelled, failed or interrupted job again, for ``runner``.

        Returns:
            False when it was in none of those states.
        """
        values = dict(state=QUEUED, runner=runner, error=None, finished_at=None)
        return self._set(job_id, RESUMABLE, None, values)

    def mark_interrupted(self, runner: str, job_ids: Sequence[int] | None = None) -> int:
        """Mark the queued and running jobs of ``runner`` (or only ``job_ids``) interrupted.

        Returns:
            How many jobs were marked.
        """
        stmt = (
            update(IndexJob)
            .where(IndexJob.runner == runner, IndexJob.state.in_(ACTIVE))
            .values(state=INTERRUPTED, finished_at=utc_now(), current_file=None)
        )
        if job_ids is not None:
            stmt = stmt.where(IndexJob.id.in_(list(job_ids)))
        with self._db.writer.begin() as conn:
            return conn.execute(stmt).rowcount

    def _set(
        self, job_id: int, states: Sequence[str], owner: str | None, values: dict[str, Any]
    ) -> bool:
        """UPDATE the job when it is in one of ``states`` (and run by ``owner``, if given)."""
        stmt = update(IndexJob).where(IndexJob.id == job_id, IndexJob.state.in_(states))
        if owner is not None:
            stmt = stmt.where(IndexJob.runner == owner)
        with self._db.writer.begin() as conn:
            return bool(conn.execute(stmt.values(**values)).rowcount)


def _progress_values(p: JobProgress) -> dict[str, Any]:
    return dict(
        files_total=p.files_total,
        files_done=p.files_done,
        indexed=p.indexed,
        unchanged=p.unchanged,
        failed=p.failed,
        deleted=p.deleted,
        current_file=p.current_file,
    )


def _select() -> Any:
    return select(*IndexJob.__table__.c, Collection.name.label("collection_name")).join(
        Collection, Collection.id == IndexJob.collection_id
    )


def _record(row: Any) -> JobRecord:
    job = row
    progress = JobProgress(
        job.files_total,
        job.files_done,
        job.indexed,
        job.unchanged,
        job.failed,
        job.deleted,
        job.current_file,
    )
    return JobRecord(
        id=job.id,
        collection_id=job.collection_id,
        collection=row.collection_name,
        paths=list(job.paths),
        retry_failed=bool(job.retry_failed),
        state=job.state,
        runner=job.runner,
        progress=progress,
        error=job.error,
        created_at=_utc(job.created_at),
        started_at=_utc(job.started_at),
        finished_at=_utc(job.finished_at),
    )
