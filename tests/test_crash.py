"""Crash tests: kill -9 the indexer or the server at random moments; nothing is lost or doubled.

Each test draws its kill moments from a printed seed (``ASSETSEARCH_TEST_SEED`` replays one).
``ASSETSEARCH_TEST_DURABILITY=full`` runs at least 20 kills a test over bigger libraries;
the default (CI) runs at least 3.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from latent.catalog.schema import Change
from latent.models.encoders import Encoder
from tests.durability import (
    FULL,
    CatalogState,
    Library,
    Proc,
    Processes,
    check_catalog,
    check_live_index,
    check_own_first,
    check_server,
    cli_env,
    generation_matches_log,
    read_catalog,
    run_seed,
    summary_counts,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600 if FULL else 900)]

# (library files, kills) by backend; PostgreSQL runs the smaller variant.
INDEXER_SIZES = {
    "sqlite": (3000, 20) if FULL else (2000, 3),
    "postgres": (1000, 20) if FULL else (400, 3),
}
SERVER_SIZES = {
    "sqlite": (2000, 20) if FULL else (800, 3),
    "postgres": (800, 20) if FULL else (300, 3),
}

# Where a kill lands, with weights. Indexer log lines (-v) mark the phases:
# "scanning ..." before the diff, "committing N ..." just before each catalog transaction.
INDEXER_PHASES = {"startup": 2, "scan": 1, "encode": 3, "commit": 4}
SERVER_PHASES = {"load": 3, "apply": 3, "snapshot": 4}


def _backend(url: str) -> str:
    return "postgres" if url.startswith("postgresql") else "sqlite"


def _kill_inside_transaction(proc: Proc, url: str) -> bool:
    """PostgreSQL: kill the indexer while its transaction holds uncommitted rows.

    Once the run has migrated the catalog and started scanning, the test locks the change
    log; the indexer's next commit writes its asset and embedding rows, then waits for that
    lock, and dies there. True when it got that far.
    """
    if not proc.wait_line(r"scanning "):
        return False
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as lock, psycopg.connect(dsn, autocommit=True) as watch:
        lock.execute(f"LOCK TABLE {Change.__tablename__} IN EXCLUSIVE MODE")
        while proc.alive():
            waiting = watch.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "JOIN pg_database d ON d.oid = l.database "
                "WHERE NOT l.granted AND c.relname = %s AND d.datname = current_database()",
                (Change.__tablename__,),
            ).fetchone()
            if waiting and waiting[0]:
                return proc.kill()
            time.sleep(0.01)
        lock.rollback()
    return False


def _kill_indexer(proc: Proc, rng: random.Random, url: str) -> tuple[str, bool]:
    """Kill an indexing run at a random moment of a random phase; returns (what, killed)."""
    phases = dict(INDEXER_PHASES, inside=4) if _backend(url) == "postgres" else INDEXER_PHASES
    phase = rng.choices(list(phases), weights=list(phases.values()))[0]
    if phase == "inside":
        return "inside a transaction", _kill_inside_transaction(proc, url)
    if phase == "startup":  # imports, migration, model load, reading the catalog, first batches
        delay = rng.uniform(0, 6.0)
        what = f"startup +{delay:.2f}s"
        proc.sleep(delay)
    elif phase == "scan":
        delay = rng.uniform(0, 0.3)
        what = f"scan +{delay:.3f}s"
        if proc.wait_line(r"scanning "):
            proc.sleep(delay)
    else:  # just before or inside the nth transaction, or encoding the batch after it
        nth = rng.randint(1, 12)
        delay = rng.uniform(0, 0.02) if phase == "commit" else rng.uniform(0.02, 0.4)
        what = f"{phase} #{nth} +{delay:.3f}s"
        if proc.wait_line(r"committing \d+", nth):
            proc.sleep(delay)
    return what, proc.kill()


def _expected_summary(cat: CatalogState, lib: Library) -> tuple[int, int, int, int]:
    """What a complete run must report: only files not yet durably committed are encoded."""
    indexed = unchanged = failed = 0
    for rel, version in lib.current.items():
        row = cat.assets.get(lib.uri(rel))
        stat = (lib.root / rel).stat()
        if (
            row
            and row.state != "deleted"
            and (row.size, row.mtime_ns) == (stat.st_size, stat.st_mtime_ns)
        ):
            unchanged += 1
        elif version.seed is None:
            failed += 1
        else:
            indexed += 1
    present = {lib.uri(rel) for rel in lib.current}
    deleted = sum(
        1 for uri, row in cat.assets.items() if row.state != "deleted" and uri not in present
    )
    return indexed, unchanged, failed, deleted


def _check_everything(
    url: str, data_dir: Path, lib: Library, encoder: Encoder, procs: Processes, rng: random.Random
) -> None:
    """SQL, a freshly loaded index and a freshly started server all agree with the library."""
    cat = read_catalog(url)
    check_catalog(cat, lib)
    check_own_first(cat, lib, encoder)
    source = check_live_index(url, data_dir, cat)
    server, port = procs.serve()
    check_server(f"127.0.0.1:{port}", cat, lib, rng)
    procs.stop(server)
    print(
        f"checked {len(cat.embeddings)} vectors, {len(cat.assets)} assets, seq {cat.head}; "
        f"fresh index from {source}"
    )


def test_indexer_killed_at_random_moments(
    database_url: str, tmp_path: Path, encoder: Encoder
) -> None:
    files, wanted = INDEXER_SIZES[_backend(database_url)]
    rng = random.Random(run_seed(f"indexer crash, {files} files, {wanted} kills"))
    lib = Library(tmp_path / "library", rng)
    lib.add(files, broken=max(2, files // 200))
    data_dir = tmp_path / "data"
    kills = rounds = 0
    completed = False
    with Processes(cli_env(data_dir, database_url)) as procs:
        while kills < wanted:
            rounds += 1
            assert rounds <= 3 * wanted + 10, "the indexer keeps finishing before its kill"
            # Give later kills changed, deleted and restored files to work on too.
            if completed or (rounds > 1 and rng.random() < 0.25):
                print(f"round {rounds}: library {lib.mutate(rng.uniform(0.02, 0.08))}")
            proc = procs.spawn("-v", "index", str(lib.root))
            what, killed = _kill_indexer(proc, rng, database_url)
            completed = not killed
            assert killed or proc.popen.returncode == 0, f"{proc} failed:\n{proc.output()}"
            kills += killed
            commits = sum("committing" in line for line in proc.lines)
            ending = "killed" if killed else "finished"
            print(f"round {rounds}: {what}: {ending} after {commits} commits")
        expected = _expected_summary(read_catalog(database_url, vectors=False), lib)
        done = summary_counts(procs.run("index", str(lib.root)))
        assert done == expected, (
            f"final run did {done}, expected (indexed, unchanged, failed, deleted) {expected}"
        )
        _check_everything(database_url, data_dir, lib, encoder, procs, rng)


def _kill_server(
    server: Proc, address: str, url: str, dim: int, rng: random.Random
) -> tuple[str, bool]:
    """Kill a server while it loads and replays, applies changes, or writes its snapshot."""
    phase = rng.choices(list(SERVER_PHASES), weights=list(SERVER_PHASES.values()))[0]
    if phase == "load":  # "serving on" is printed before the index loads and replays the log
        delay = rng.uniform(0, 0.6)
        server.sleep(delay)
        return f"load +{delay:.3f}s", server.kill()
    delay = rng.uniform(0.1, 2.5)
    server.sleep(delay)
    seen = generation_matches_log(address, url, dim)  # a generation in flight is consistent
    if phase == "apply":
        server.sleep(extra := rng.uniform(0, 0.1))
        return f"apply +{delay + extra:.3f}s at {seen}", server.kill()
    server.terminate()  # stop: finish calls, stop tailing, write the snapshot, exit
    extra = rng.uniform(0, 0.25)
    if server.wait_line(r"stopping"):
        server.sleep(extra)
    return f"snapshot, SIGTERM +{delay:.3f}s, kill +{extra:.3f}s at {seen}", server.kill()


def test_server_killed_while_applying_changes(
    database_url: str, tmp_path: Path, encoder: Encoder
) -> None:
    if _backend(database_url) == "postgres" and not FULL:
        pytest.skip("the PostgreSQL server crash runs with ASSETSEARCH_TEST_DURABILITY=full")
    files, wanted = SERVER_SIZES[_backend(database_url)]
    rng = random.Random(run_seed(f"server crash, {files} files, {wanted} kills"))
    lib = Library(tmp_path / "library", rng)
    lib.add(files, broken=2)
    data_dir = tmp_path / "data"
    kills = rounds = 0
    with Processes(cli_env(data_dir, database_url)) as procs:
        while kills < wanted:
            rounds += 1
            assert rounds <= 3 * wanted + 10, "the server keeps exiting before its kill"
            if rounds > 1:
                print(f"round {rounds}: library {lib.mutate(rng.uniform(0.03, 0.1))}")
            # The indexer writes while the server starts, replays and tails; round 1 starts both
            # on an empty catalog.
            indexer = procs.spawn("index", str(lib.root))
            server, port = procs.serve()
            what, killed = _kill_server(server, f"127.0.0.1:{port}", database_url, encoder.dim, rng)
            kills += killed
            assert killed or server.popen.returncode == 0, f"{server} failed:\n{server.output()}"
            rc = indexer.wait()
            assert rc == 0, f"{indexer} failed:\n{indexer.output()}"
            left = sorted(p.name for p in (data_dir / "snapshots").rglob("*"))
            print(
                f"round {rounds}: {what}: {'killed' if killed else 'exited'}; snapshots dir {left}"
            )
        _check_everything(database_url, data_dir, lib, encoder, procs, rng)


def test_processes_starting_together_on_an_empty_catalog(database_url: str, tmp_path: Path) -> None:
    """Processes started together on an empty catalog all come up (none dies migrating it).

    docker-compose starts the service and the indexer job together on an empty database.
    """
    with Processes(cli_env(tmp_path / "data", database_url)) as procs:
        starters = [procs.spawn("status") for _ in range(4)]
        failed = [(str(p), p.output()) for p in starters if p.wait() != 0]
    assert not failed, f"{len(failed)} of 4 processes failed:\n{failed[0][1]}"
