"""Index jobs: the job store, the library-roots rule, JobService on the real server, the CLI."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from assetsearch_client import SearchClient
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb
from assetsearch_client.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)

from latent.catalog import Catalog
from latent.catalog.jobs import (
    INTERRUPTED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    JobProgress,
)
from latent.models.encoders import Encoder, EncoderCache
from latent.settings import Settings
from service.library_roots import NO_ROOTS, LibraryRoots
from service.server import AssetSearchServer
from tests.conftest import write_library

State = pb.IndexJob
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- the job store, on SQLite and PostgreSQL ----------------------------------------------


def test_job_store_lifecycle(catalog: Catalog) -> None:
    a = catalog.ensure_collection("a", "test:model", 4)
    b = catalog.ensure_collection("b", "test:model", 4)
    jobs = catalog.jobs
    j1 = jobs.create_job(a.id, ["photos"], False, "r1")
    j2 = jobs.create_job(b.id, ["x", "y"], True, "r1")
    j3 = jobs.create_job(a.id, ["/abs"], False, "r0")
    assert (j1.state, j1.collection, j1.paths, j1.runner) == (QUEUED, "a", ["photos"], "r1")
    assert j2.retry_failed and j2.progress == JobProgress() and j2.started_at is None
    assert j1.created_at is not None and j1.created_at.tzinfo is not None
    assert [j.id for j in jobs.jobs()] == [j3.id, j2.id, j1.id]  # newest first
    assert [j.id for j in jobs.jobs(["a"])] == [j3.id, j1.id]
    assert [j.id for j in jobs.jobs(limit=1)] == [j3.id]
    assert jobs.jobs(["nope"]) == []

    running = jobs.claim_job(j1.id, "r1")
    assert running is not None and running.state == RUNNING and running.started_at is not None
    assert jobs.claim_job(j1.id, "r2") is None  # claimed once only
    assert jobs.claim_job(j3.id, "r1") is None  # queued for r0: r0 runs it
    progress = JobProgress(10, 3, 2, 1, 0, 0, "/lib/photos/img3.png")
    assert jobs.update_progress(j1.id, "r1", progress)
    assert not jobs.update_progress(j1.id, "r2", progress)  # another runner's write is refused
    assert jobs.job(j1.id).progress == progress

    assert jobs.cancel_job(j2.id)  # queued: cancelled in the row at once
    assert jobs.claim_job(j2.id, "r1") is None
    assert jobs.job(j2.id).finished_at is not None
    assert jobs.resume_job(j2.id, "r1") and jobs.job(j2.id).state == QUEUED
    assert not jobs.resume_job(j3.id, "r1")  # queued: nothing to resume

    done = JobProgress(10, 10, 9, 1, 0, 2, "/lib/last.png")
    assert jobs.finish_job(j1.id, "r1", SUCCEEDED, done)
    assert not jobs.finish_job(j1.id, "r1", SUCCEEDED, done)  # not running any more
    finished = jobs.job(j1.id)
    assert finished.state == SUCCEEDED and finished.progress.deleted == 2
    assert finished.progress.current_file is None
    assert finished.finished_at is not None and finished.started_at is not None
    assert finished.finished_at >= finished.started_at
    assert not jobs.cancel_job(j1.id)

    assert jobs.mark_interrupted("r1") == 1  # j2 (queued again); j3 belongs to r0
    assert jobs.job(j2.id).state == INTERRUPTED and jobs.job(j3.id).state == QUEUED
    with pytest.raises(NotFound, match="index job 999"):
        jobs.job(999)


# -- the library roots rule ---------------------------------------------------------------


@pytest.fixture
def roots_tree(tmp_path: Path) -> dict[str, Path]:
    """lib/ (photos/, a link inside it, links out), lib2/, outside/ with a file."""
    lib, lib2, outside = tmp_path / "lib", tmp_path / "lib2", tmp_path / "outside"
    for folder in (lib / "photos", lib2 / "more", outside):
        folder.mkdir(parents=True)
    (outside / "secret.png").write_bytes(b"x")
    (lib / "link_out").symlink_to(outside)
    (lib / "photos" / "secret_link.png").symlink_to(outside / "secret.png")
    (lib / "also_photos").symlink_to(lib / "photos")
    (tmp_path / "lib_link").symlink_to(lib)
    return {"lib": lib, "lib2": lib2, "outside": outside, "tmp": tmp_path}


def test_library_roots_resolve_inside_only(roots_tree: dict[str, Path]) -> None:
    lib, lib2, outside = roots_tree["lib"], roots_tree["lib2"], roots_tree["outside"]
    roots = LibraryRoots([lib, lib2])
    photos = (lib / "photos").resolve()
    assert roots.resolve("photos") == photos  # relative to the first root
    assert roots.resolve(str(lib / "photos")) == photos
    assert roots.resolve("photos/../photos") == photos  # '..' that stays inside is fine
    assert roots.resolve("also_photos") == photos  # a link inside the root
    assert roots.resolve(str(lib2 / "more")) == (lib2 / "more").resolve()
    refused = [
        "..",
        "../outside",
        "../outside/secret.png",
        "../does-not-exist",  # outside: refused before its existence is looked at
        str(outside),
        "/etc",
        "link_out",
        "link_out/secret.png",  # a parent that is a link out
        "photos/secret_link.png",  # the file itself is a link out
    ]
    for path in refused:
        with pytest.raises(PermissionDenied, match="outside the library roots"):
            roots.resolve(path)
    with pytest.raises(NotFound, match="does not exist"):
        roots.resolve("photos/missing")
    for bad in ("", "pho\x00tos"):
        with pytest.raises(InvalidArgument):
            roots.resolve(bad)
    with pytest.raises(InvalidArgument, match="at least one path"):
        roots.resolve_all([])
    # A root given through a link works, and links are judged against the real root.
    linked = LibraryRoots([roots_tree["tmp"] / "lib_link"])
    assert linked.resolve("photos") == photos
    with pytest.raises(PermissionDenied):
        linked.resolve("link_out")
    with pytest.raises(FailedPrecondition, match="ASSETSEARCH_LIBRARY_ROOTS"):
        LibraryRoots([]).resolve_all(["photos"])


# -- through the real server ----------------------------------------------------------------


class GatedEncoder:
    """The real tiny encoder; image batches after the first ``free`` wait at ``gate``."""

    def __init__(self, inner: Encoder, free: int) -> None:
        self.inner, self.spec, self.dim = inner, inner.spec, inner.dim
        self.free = free
        self.batches = 0
        self.held = threading.Event()  # set when a batch waits at the gate
        self.gate = threading.Event()

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.encode_texts(texts)

    def encode_images(self, images: Sequence[Any]) -> np.ndarray:
        self.batches += 1
        if self.batches > self.free and not self.gate.is_set():
            self.held.set()
            assert self.gate.wait(30), "the test never opened the gate"
        return self.inner.encode_images(images)


class Servers:
    """Starts servers over the test catalog with library roots; stops what is left."""

    def __init__(self, settings: Settings, encoder: Encoder, root: Path) -> None:
        self.settings, self.encoder, self.root = settings, encoder, root
        self.running: list[AssetSearchServer] = []

    def start(self, encoder: Any = None, **overrides: Any) -> AssetSearchServer:
        update = {"library_roots": [self.root], **overrides}
        settings = self.settings.model_copy(update=update)
        encoders = EncoderCache()
        encoders.put(encoder or self.encoder)
        srv = AssetSearchServer(settings, Catalog(settings.resolved_database_url()), encoders)
        srv.start(host="127.0.0.1", port=0)
        self.running.append(srv)
        return srv

    def stop(self, srv: AssetSearchServer) -> None:
        self.running.remove(srv)
        srv.stop(grace=0)
        srv.catalog.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A library root holding ``photos/`` (filled by each test) and a link out of it."""
    root = tmp_path / "root"
    (root / "photos").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    write_library(tmp_path / "outside", 1)
    (root / "photos" / "link_out").symlink_to(tmp_path / "outside")
    (root / "link_out").symlink_to(tmp_path / "outside")
    return root


@pytest.fixture
def servers(settings: Settings, encoder: Encoder, root: Path) -> Iterator[Servers]:
    """Start job servers with ``servers.start()``."""
    made = Servers(settings, encoder, root)
    yield made
    for srv in list(made.running):
        made.stop(srv)


def connect(srv: AssetSearchServer) -> SearchClient:
    return SearchClient(f"127.0.0.1:{srv.port}", timeout=30)


def watch_to_end(client: SearchClient, job_id: int) -> list[pb.IndexJob]:
    updates = list(client.watch_index_job(job_id, timeout=60))
    assert updates, "a watch sends the job at once"
    return updates


def test_job_indexes_and_survives_its_client(
    servers: Servers, root: Path, tmp_path: Path, tiny_model: str
) -> None:
    write_library(root / "photos", 24)
    srv = servers.start()
    starter = connect(srv)
    job = starter.start_index_job(["photos"])
    starter.close()  # the job is not tied to the call or the channel that started it
    assert job.state == State.STATE_QUEUED and list(job.paths) == ["photos"]
    assert job.collection == "default" and job.id > 0
    with connect(srv) as client:
        updates = watch_to_end(client, job.id)
        end = updates[-1]
        assert end.state == State.STATE_SUCCEEDED, end.error
        assert (end.files_total, end.files_done, end.indexed) == (24, 24, 24)
        assert (end.unchanged, end.failed, end.deleted) == (0, 0, 0)
        assert end.files_per_second > 0 and end.eta_seconds == 0 and end.current_file == ""
        assert end.started_at.seconds and end.finished_at.seconds
        assert all(u.state != State.STATE_SUCCEEDED for u in updates[:-1])

        def all_searchable() -> bool:
            return len(client.search(text="a picture", top_k=50).hits) == 24

        wait_for(all_searchable, "the job's assets to become searchable")

        outside = tmp_path / "outside"
        for path in ("../outside", str(outside), "link_out", "photos/link_out", "/etc"):
            with pytest.raises(PermissionDenied, match="outside the library roots"):
                client.start_index_job([path])
        with pytest.raises(NotFound, match="does not exist"):
            client.start_index_job(["photos/missing"])
        with pytest.raises(NotFound, match="collection 'other'"):
            client.start_index_job(["photos"], collection="other")
        assert [j.id for j in client.list_index_jobs()] == [job.id]  # no row for a refusal

        again = client.start_index_job([str(root / "photos")])  # absolute, inside the root
        end = watch_to_end(client, again.id)[-1]
        assert end.state == State.STATE_SUCCEEDED
        assert (end.unchanged, end.indexed, end.files_done) == (24, 0, 24)
        assert [j.id for j in client.list_index_jobs()] == [again.id, job.id]
        assert [j.id for j in client.list_index_jobs(limit=1)] == [again.id]
        assert len(client.list_index_jobs(collection="default")) == 2
        with pytest.raises(NotFound):
            client.list_index_jobs(collection="nope")
        assert [u.state for u in client.watch_index_job(job.id)] == [State.STATE_SUCCEEDED]
        with pytest.raises(FailedPrecondition, match="already succeeded"):
            client.cancel_index_job(job.id)
        with pytest.raises(FailedPrecondition, match="only a cancelled, interrupted or failed"):
            client.resume_index_job(job.id)
        with pytest.raises(NotFound):
            list(client.watch_index_job(999_999))


@SQLITE_ONLY
def test_cancel_mid_way_then_resume(servers: Servers, root: Path, encoder: Encoder) -> None:
    write_library(root / "photos", 8)  # set0/: 3 files, set1/: 3, set2/: 2, scanned in that order
    gated = GatedEncoder(encoder, free=2 + 2)  # set2/ first, then two batches of the big job
    srv = servers.start(gated, batch_size=1)
    with connect(srv) as client:
        first = client.start_index_job(["photos/set2"])
        assert watch_to_end(client, first.id)[-1].indexed == 2
        job = client.start_index_job(["photos"])
        assert gated.held.wait(30), "the job never reached its third batch"
        queued = client.start_index_job(["photos"])  # waits behind the running job
        assert client.cancel_index_job(queued.id).state == State.STATE_CANCELLED
        with pytest.raises(DeadlineExceeded):  # a watch ends at its deadline
            list(client.watch_index_job(job.id, timeout=0.3))
        running = client.cancel_index_job(job.id)
        assert running.state == State.STATE_RUNNING  # until its current batch ends
        gated.gate.set()
        end = watch_to_end(client, job.id)[-1]
        assert end.state == State.STATE_CANCELLED
        assert (end.files_done, end.indexed, end.files_total) == (3, 3, 8)
        counts = srv.catalog.collection("default").counts
        # The held batch is whole, and set2/, not reached by the scan, is not "vanished".
        assert (counts["indexed"], counts["deleted"]) == (3 + 2, 0)
        assert client.cancel_index_job(job.id).state == State.STATE_CANCELLED  # idempotent

        resumed = client.resume_index_job(job.id)
        assert (resumed.id, resumed.state) == (job.id, State.STATE_QUEUED)
        end = watch_to_end(client, job.id)[-1]
        assert end.state == State.STATE_SUCCEEDED, end.error
        assert (end.unchanged, end.indexed, end.files_done, end.files_total) == (5, 3, 8, 8)
        assert client.list_index_jobs()[0].state == State.STATE_CANCELLED  # never ran
        assert srv.catalog.collection("default").counts["indexed"] == 8


@SQLITE_ONLY
def test_cancel_from_another_replica(servers: Servers, root: Path, encoder: Encoder) -> None:
    write_library(root / "photos", 6)
    gated = GatedEncoder(encoder, free=1)
    runs = servers.start(gated, batch_size=1, instance="replica-a")
    runs.jobs.progress_interval = 0.0  # every progress write looks at the row
    other = servers.start(instance="replica-b")  # the same catalog, another process's view
    with connect(runs) as a, connect(other) as b:
        job = a.start_index_job(["photos"])
        assert gated.held.wait(30)
        seen = next(iter(b.watch_index_job(job.id, timeout=30)))
        assert seen.state == State.STATE_RUNNING  # b sees a's job through the row
        assert b.cancel_index_job(job.id).state == State.STATE_CANCELLED
        gated.gate.set()
        wait_for(lambda: runs.jobs.idle, "replica-a to stop the job")
        assert [u.state for u in a.watch_index_job(job.id)] == [State.STATE_CANCELLED]
    # The held batch committed; replica-a saw the cancel at its next write and stopped.
    assert runs.catalog.collection("default").counts["indexed"] == 2


@SQLITE_ONLY
def test_jobs_keep_to_the_keys_collections(servers: Servers, root: Path) -> None:
    write_library(root / "photos", 2)
    srv = servers.start(auth="required")
    writer = srv.catalog.keys.create("write").key
    limited = srv.catalog.keys.create("write", ["other"]).key
    address = f"127.0.0.1:{srv.port}"
    with SearchClient(address, api_key=writer) as client:
        job = client.start_index_job(["photos"])
        assert watch_to_end(client, job.id)[-1].state == State.STATE_SUCCEEDED
        assert [j.id for j in client.list_index_jobs()] == [job.id]
    with SearchClient(address, api_key=limited) as other:
        assert other.list_index_jobs() == []  # only the jobs of collections it may use
        calls: list[Callable[[], object]] = [
            lambda: list(other.watch_index_job(job.id)),
            lambda: other.cancel_index_job(job.id),
            lambda: other.resume_index_job(job.id),
            lambda: other.start_index_job(["photos"]),
            lambda: other.list_index_jobs(collection="default"),
        ]
        for call in calls:
            with pytest.raises(PermissionDenied, match="may not use collection 'default'"):
                call()


@SQLITE_ONLY
def test_server_stop_interrupts_and_resume_completes(
    servers: Servers, root: Path, encoder: Encoder, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import main

    write_library(root / "photos", 6)
    gated = GatedEncoder(encoder, free=1)
    srv = servers.start(gated, batch_size=1, instance="replica-a")
    with connect(srv) as client:
        job = client.start_index_job(["photos"])
        assert gated.held.wait(30)
    stopper = threading.Thread(target=servers.stop, args=(srv,))
    stopper.start()
    wait_for(lambda: srv.jobs.stopping, "the server to start stopping")
    gated.gate.set()
    stopper.join(30)
    assert not stopper.is_alive()

    # A job this instance ran when it crashed: left RUNNING in the row.
    catalog = Catalog(srv.settings.resolved_database_url())
    try:
        stopped = catalog.jobs.job(job.id)
        assert stopped.state == INTERRUPTED and stopped.progress.files_done == 2
        crashed = catalog.jobs.create_job(stopped.collection_id, ["photos"], False, "replica-a")
        assert catalog.jobs.claim_job(crashed.id, "replica-a") is not None
    finally:
        catalog.close()

    srv = servers.start(instance="replica-a")
    with connect(srv) as client:
        states = {j.id: j.state for j in client.list_index_jobs()}
        assert states == {job.id: State.STATE_INTERRUPTED, crashed.id: State.STATE_INTERRUPTED}
        assert main(["job", "watch", str(job.id), "--server", f"127.0.0.1:{srv.port}"]) == 1
        assert "interrupted" in capsys.readouterr().out
        assert client.resume_index_job(job.id).state == State.STATE_QUEUED
        end = watch_to_end(client, job.id)[-1]
        assert end.state == State.STATE_SUCCEEDED, end.error
        assert (end.unchanged, end.indexed, end.files_done) == (2, 4, 6)


@SQLITE_ONLY
def test_no_library_roots_is_failed_precondition(client: SearchClient) -> None:
    with pytest.raises(FailedPrecondition, match="ASSETSEARCH_LIBRARY_ROOTS") as caught:
        client.start_index_job(["photos"])
    assert str(caught.value) == NO_ROOTS
    assert client.list_index_jobs() == []


@SQLITE_ONLY
def test_cli_job_commands(servers: Servers, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    write_library(root / "photos", 5)
    srv = servers.start()
    server = ["--server", f"127.0.0.1:{srv.port}"]
    assert main(["job", "start", "photos", "--watch", *server]) == 0
    out = capsys.readouterr().out
    first_line, last_line = out.splitlines()[0], out.splitlines()[-1]
    job_id = int(first_line.split()[-1])
    assert f"job {job_id} succeeded" in last_line and "indexed 5" in last_line

    assert main(["job", "start", os.path.join(str(root), "photos"), *server]) == 0
    second = int(capsys.readouterr().out.split()[-1])
    assert second > job_id
    with connect(srv) as client:
        watch_to_end(client, second)
    assert main(["job", "list", "--json", *server]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == [second, job_id]
    assert rows[0]["state"] == "succeeded" and rows[0]["unchanged"] == 5
    assert main(["job", "list", *server]) == 0
    assert str(second) in capsys.readouterr().out
    assert main(["job", "watch", str(job_id), *server]) == 0
    assert main(["job", "cancel", str(job_id), *server]) == 1
    assert "FAILED_PRECONDITION" in capsys.readouterr().err
    assert main(["job", "start", "../outside", *server]) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err
