"""The JobService servicer: start, watch, cancel, resume and list the server's index jobs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING

import grpc
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb
from assetsearch_client._pb.assetsearch.v1 import search_pb2_grpc as pb_grpc

from latent.catalog.jobs import CANCELLED, RESUMABLE, TERMINAL, JobRecord, utc_now
from latent.errors import FailedPrecondition, InvalidArgument, NotFound
from service.auth import allowed_collections, require_collection
from service.convert.records import timestamp

if TYPE_CHECKING:
    from latent.catalog import Catalog, CollectionInfo
    from latent.models.encoders import EncoderCache
    from latent.settings import Settings
    from service.job_runner import JobRunner

WATCH_POLL = 0.25  # seconds between reads of a watched row (a job of another replica)
DEFAULT_LIST = 50
MAX_LIST = 1000

STATES = {
    "queued": pb.IndexJob.STATE_QUEUED,
    "running": pb.IndexJob.STATE_RUNNING,
    "succeeded": pb.IndexJob.STATE_SUCCEEDED,
    "failed": pb.IndexJob.STATE_FAILED,
    "cancelled": pb.IndexJob.STATE_CANCELLED,
    "interrupted": pb.IndexJob.STATE_INTERRUPTED,
}


def job_message(job: JobRecord, now: dt.datetime | None = None) -> pb.IndexJob:
    """The IndexJob message of a job row, with its rate and ETA as of ``now``."""
    p = job.progress
    rate = files_per_second(job, now or utc_now())
    left = p.files_total - p.files_done
    eta = left / rate if job.state == "running" and rate > 0 and left > 0 else 0.0
    message = pb.IndexJob(
        id=job.id,
        collection=job.collection,
        paths=job.paths,
        state=STATES.get(job.state, pb.IndexJob.STATE_UNSPECIFIED),
        files_total=p.files_total,
        files_done=p.files_done,
        indexed=p.indexed,
        unchanged=p.unchanged,
        failed=p.failed,
        deleted=p.deleted,
        current_file=p.current_file or "",
        files_per_second=rate,
        eta_seconds=eta,
        error=job.error or "",
        retry_failed=job.retry_failed,
        created_at=timestamp(job.created_at),
    )
    if job.started_at is not None:
        message.started_at.CopyFrom(timestamp(job.started_at))
    if job.finished_at is not None:
        message.finished_at.CopyFrom(timestamp(job.finished_at))
    return message


def files_per_second(job: JobRecord, now: dt.datetime) -> float:
    """Files handled per second since the job (last) started; 0 before it has."""
    if job.started_at is None or job.state == "queued":
        return 0.0
    end = job.finished_at if job.finished_at and job.state in TERMINAL else now
    seconds = (end - job.started_at).total_seconds()
    return job.progress.files_done / seconds if seconds > 0 else 0.0


class JobServicer(pb_grpc.JobServiceServicer):
    """Implements ``assetsearch.v1.JobService`` over the catalog's job rows and the runner."""

    def __init__(
        self, settings: Settings, catalog: Catalog, encoders: EncoderCache, runner: JobRunner
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.encoders = encoders
        self.runner = runner

    def StartIndexJob(  # noqa: N802
        self, request: pb.StartIndexJobRequest, context: grpc.ServicerContext
    ) -> pb.StartIndexJobResponse:
        """Check the paths against the library roots, then queue a job; returns at once."""
        self.runner.roots.resolve_all(request.paths)  # refused before any row is written
        self.runner.check_running()
        collection = self._collection(request.collection or self.settings.collection)
        job = self.catalog.jobs.create_job(
            collection.id, list(request.paths), request.retry_failed, self.runner.instance
        )
        self.runner.submit(job)
        return pb.StartIndexJobResponse(job=job_message(job))

    def _collection(self, name: str) -> CollectionInfo:
        """The collection; the server's default one is made with its model when missing."""
        found = self.catalog.find_collection(name)
        if found is not None:
            return found
        if name != self.settings.collection:
            raise NotFound(
                f"collection {name!r} does not exist: create it first (CreateCollection, "
                "an admin key), or index into the default collection"
            )
        encoder = self.encoders.get(self.settings.model)
        return self.catalog.ensure_collection(name, encoder.spec, encoder.dim)

    def WatchIndexJob(  # noqa: N802
        self, request: pb.WatchIndexJobRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WatchIndexJobResponse]:
        """The job now, then at each change, until it ends or the call is cancelled."""
        job = self._job(request.id)
        sent: JobRecord | None = None
        while True:
            if job != sent:
                yield pb.WatchIndexJobResponse(job=job_message(job))
                sent = job
            if job.state in TERMINAL or not context.is_active():
                return
            with self.runner.changed:
                self.runner.changed.wait(WATCH_POLL)
            job = self.catalog.jobs.job(request.id)

    def CancelIndexJob(  # noqa: N802
        self, request: pb.CancelIndexJobRequest, context: grpc.ServicerContext
    ) -> pb.CancelIndexJobResponse:
        """Stop a queued or running job; a running one ends CANCELLED after its batch."""
        job = self._job(request.id)
        if job.state in TERMINAL and job.state != CANCELLED:
            raise FailedPrecondition(f"index job {job.id} has already {job.state}; nothing to stop")
        if job.state != CANCELLED and not self.runner.cancel(job.id):
            # Queued here, or run by another replica: its runner sees the row and stops.
            self.catalog.jobs.cancel_job(job.id)
            self.runner.notify()
        return pb.CancelIndexJobResponse(job=job_message(self.catalog.jobs.job(job.id)))

    def ResumeIndexJob(  # noqa: N802
        self, request: pb.ResumeIndexJobRequest, context: grpc.ServicerContext
    ) -> pb.ResumeIndexJobResponse:
        """Queue a cancelled, interrupted or failed job again with the same id."""
        job = self._job(request.id)
        if job.state not in RESUMABLE or not self._resume(job):
            state = self.catalog.jobs.job(job.id).state
            raise FailedPrecondition(
                f"index job {job.id} is {state}: only a cancelled, interrupted or failed job "
                "can be resumed"
            )
        resumed = self.catalog.jobs.job(job.id)
        self.runner.submit(resumed)
        return pb.ResumeIndexJobResponse(job=job_message(resumed))

    def _resume(self, job: JobRecord) -> bool:
        self.runner.roots.resolve_all(job.paths)  # the roots or links may have changed
        self.runner.check_running()
        return self.catalog.jobs.resume_job(job.id, self.runner.instance)

    def ListIndexJobs(  # noqa: N802
        self, request: pb.ListIndexJobsRequest, context: grpc.ServicerContext
    ) -> pb.ListIndexJobsResponse:
        """The newest jobs (of one collection, or of those the key may use), newest first."""
        if not 0 <= request.limit <= MAX_LIST:
            raise InvalidArgument(
                f"limit must be between 0 (meaning {DEFAULT_LIST}) and {MAX_LIST}"
            )
        names: list[str] | None = None
        if request.collection:
            self.catalog.collection(request.collection)  # NotFound for a name never used
            names = [request.collection]
        elif (allowed := allowed_collections()) is not None:
            names = sorted(allowed)
        jobs = self.catalog.jobs.jobs(names, request.limit or DEFAULT_LIST)
        now = utc_now()
        return pb.ListIndexJobsResponse(jobs=[job_message(j, now) for j in jobs])

    def _job(self, job_id: int) -> JobRecord:
        """The job, when the call's key may use its collection.

        Raises:
            InvalidArgument: the id is not positive.
            NotFound: no such job.
            PermissionDenied: the key is limited to other collections.
        """
        if job_id <= 0:
            raise InvalidArgument("id must be a positive index job id")
        job = self.catalog.jobs.job(job_id)
        require_collection(job.collection)
        return job
