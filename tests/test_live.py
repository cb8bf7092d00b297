"""Live index generations: rebuild from SQL, replay the log as delta + tombstones, folds and
rebuilds in the background, snapshots and their validation, and searches throughout."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import faiss
import numpy as np

from latent.catalog import AssetWrite, Catalog, CollectionInfo
from latent.index.base import VectorIndex
from latent.index.live import Generation, LiveIndex
from latent.index.policy import IndexPolicy
from latent.index.snapshot import MANIFEST

DIM = 8
WAIT = 60  # seconds a handshake may take before the test gives up (never a timing check)


def _add(catalog: Catalog, col: CollectionInfo, uris: list[str], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    writes = []
    for uri in uris:
        v = rng.standard_normal((1, col.dim)).astype(np.float32)
        writes.append(AssetWrite(uri, "image", 1, 1, "h", vectors=v / np.linalg.norm(v)))
    catalog.commit(col, writes)


def _uris(start: int, stop: int) -> list[str]:
    return [f"file:///{i}" for i in range(start, stop)]


def _sql(catalog: Catalog, col: CollectionInfo) -> tuple[np.ndarray, np.ndarray]:
    chunks = list(catalog.all_vectors(col))
    ids = np.concatenate([np.zeros(0, np.int64)] + [c[0] for c in chunks])
    return ids, np.concatenate([np.zeros((0, col.dim), np.float32)] + [c[1] for c in chunks])


def _sql_ids(catalog: Catalog, col: CollectionInfo) -> list[int]:
    return sorted(_sql(catalog, col)[0].tolist())


def assert_matches_catalog(
    live: LiveIndex, catalog: Catalog, col: CollectionInfo, min_recall: float = 1.0
) -> None:
    """The served generation holds exactly the catalog's vectors; search finds what exact does."""
    generation = live.generation
    assert generation.seq == catalog.head_seq(col.id)
    ids, vectors = _sql(catalog, col)
    index = generation.index
    assert len(index) == len(ids)
    assert sorted(index.ids().tolist()) == sorted(ids.tolist())
    np.testing.assert_allclose(index.vectors(ids), vectors, atol=1e-6)
    order = np.argsort(index.ids())
    np.testing.assert_allclose(index.matrix()[order], vectors[np.argsort(ids)], atol=1e-6)
    queries = np.random.default_rng(99).standard_normal((20, col.dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    _, rows = faiss.knn(queries, vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)
    _, found = index.search(queries, 10)
    hits = sum(
        len(set(f) & set(t)) for f, t in zip(found.tolist(), ids[rows].tolist(), strict=True)
    )
    assert hits / rows.size >= min_recall, index.description


def test_rebuild_then_refresh_follows_the_catalog(catalog: Catalog) -> None:
    col = catalog.ensure_collection("c", "spec", DIM)
    _add(catalog, col, _uris(0, 10))
    live = LiveIndex(catalog, col)
    assert live.load() == "sql"
    old = live.generation
    _add(catalog, col, ["file:///new"], seed=1)
    catalog.commit(col, [], ["file:///0", "file:///1"])
    assert live.refresh() == 3
    assert sorted(live.generation.index.ids().tolist()) == _sql_ids(catalog, col)
    assert len(old.index) == 10  # the published generation never changes under a reader
    assert live.refresh() == 0


def test_refresh_layers_delta_and_tombstones_over_a_shared_base(catalog: Catalog) -> None:
    col = catalog.ensure_collection("c", "spec", DIM)
    _add(catalog, col, _uris(0, 300))
    live = LiveIndex(catalog, col)
    live.load()
    base = live.generation.index.base.index
    steps = [
        lambda: _add(catalog, col, _uris(300, 350), seed=1),  # a delta segment
        lambda: catalog.commit(col, [], _uris(0, 10) + _uris(300, 305)),  # base and delta
        lambda: _add(catalog, col, _uris(10, 20) + _uris(305, 310), seed=2),  # re-add, replace
        lambda: _add(catalog, col, _uris(350, 351), seed=3),
    ]
    for step in steps:
        step()
        live.refresh()
        assert live.generation.index.base.index is base  # never copied by a refresh
        assert_matches_catalog(live, catalog, col)
    assert live.generation.index.pending > 0
    assert len(live.generation.index.layers) <= 4  # segments are compacted


def test_a_fold_absorbs_the_delta_and_snapshots(catalog: Catalog, tmp_path: Path) -> None:
    col = catalog.ensure_collection("c", "spec", DIM)
    _add(catalog, col, _uris(0, 100))
    live = LiveIndex(catalog, col, tmp_path, IndexPolicy(fold_min=20, fold_fraction=0))
    live.load()
    _add(catalog, col, _uris(100, 110), seed=1)
    live.refresh()
    assert live.maintain(wait=True) is None  # 10 pending: not worth a fold yet
    catalog.commit(col, [], _uris(0, 15))
    live.refresh()
    assert (live.maintain(wait=True) or "").startswith("fold")
    view = live.generation.index
    assert view.pending == 0 and len(view.layers) == 1
    assert_matches_catalog(live, catalog, col)
    manifest = json.loads((tmp_path / "c" / MANIFEST).read_text())
    assert manifest["seq"] == live.generation.seq and manifest["ntotal"] == 95


def test_growth_trains_an_ivf_index_that_survives_restart(catalog: Catalog, tmp_path: Path) -> None:
    col = catalog.ensure_collection("c", "spec", DIM)
    _add(catalog, col, _uris(0, 1_200))
    policy = IndexPolicy(flat_threshold=1_000)
    live = LiveIndex(catalog, col, tmp_path, policy)
    assert live.load() == "sql"
    assert live.generation.index.spec.kind == "flat"  # exact results while training
    assert (live.maintain(wait=True) or "").startswith("rebuild")
    spec = live.generation.index.spec
    assert spec.kind == "ivf-flat" and spec.nlist > 1 and spec.nprobe >= 1
    assert spec.recall is not None and spec.recall >= policy.target_recall
    assert_matches_catalog(live, catalog, col, min_recall=0.9)
    manifest = json.loads((tmp_path / "c" / MANIFEST).read_text())
    assert manifest["index_type"] == "ivf-flat"
    assert manifest["index"]["nlist"] == spec.nlist and manifest["index"]["nprobe"] == spec.nprobe
    assert manifest["bytes_per_vector"] > 0
    _add(catalog, col, _uris(1_200, 1_210), seed=5)
    restarted = LiveIndex(catalog, col, tmp_path, policy)
    assert restarted.load() == "snapshot"
    assert restarted.generation.index.spec == spec
    assert restarted.maintain(wait=True) is None  # nothing to retrain after a restart
    assert_matches_catalog(restarted, catalog, col, min_recall=0.9)


def test_a_collection_override_is_applied_kept_and_cleared(
    catalog: Catalog, tmp_path: Path
) -> None:
    col = catalog.ensure_collection("c", "spec", DIM)
    _add(catalog, col, _uris(0, 400))
    live = LiveIndex(catalog, col, tmp_path, IndexPolicy(fold_min=10, fold_fraction=0))
    live.load()
    catalog.set_index_options("c", {"kind": "hnsw", "ef_search": 50})
    assert (live.maintain(wait=True) or "").startswith("rebuild")
    assert live.generation.index.spec.describe() == "hnsw(m=32, ef_construction=80, ef_search=50)"
    catalog.commit(col, [], _uris(0, 20))  # HNSW cannot remove: tombstones, then a fold
    live.refresh()
    assert (live.maintain(wait=True) or "").startswith("fold")
    assert_matches_catalog(live, catalog, col)
    restarted = LiveIndex(catalog, col, tmp_path)
    assert restarted.load() == "snapshot"
    assert restarted.generation.index.spec.kind == "hnsw"
    assert_matches_catalog(restarted, catalog, col)  # the tombstones came back too
    catalog.set_index_options("c", None)
    assert (restarted.maintain(wait=True) or "").startswith("rebuild")
    assert restarted.generation.index.spec.kind == "flat"


class GatedLive(LiveIndex):
    """A live index whose background rebuild pauses until the test lets it go on."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.entered, self.release = threading.Event(), threading.Event()

    def _rebuilt(self, current: Generation) -> tuple[VectorIndex, int]:
        built = super()._rebuilt(current)
        self.entered.set()
        assert self.release.wait(WAIT)
        return built


def test_changes_applied_during_a_rebuild_survive_the_swap(catalog: Catalog) -> None:
    col = catalog.ensure_collection("c", "spec", DIM)
    _add(catalog, col, _uris(0, 200))
    live = GatedLive(catalog, col)
    live.load()
    old_base = live.generation.index.base.index
    live.rebuild()
    assert live.entered.wait(WAIT)
    # The rebuild is in flight: searches and the writer carry on.
    _add(catalog, col, _uris(200, 230), seed=1)
    catalog.commit(col, [], _uris(0, 5))
    assert live.refresh() == 35
    assert_matches_catalog(live, catalog, col)
    live.release.set()
    assert live.wait_idle(WAIT)
    assert live.last_job and live.last_job.startswith("rebuild")
    view = live.generation.index
    assert view.base.index is not old_base
    assert view.pending == 35  # what changed while it was built, replayed onto it
    assert_matches_catalog(live, catalog, col)


def test_searches_run_throughout_refreshes_folds_and_rebuilds(catalog: Catalog) -> None:
    col = catalog.ensure_collection("c", "spec", DIM)
    _add(catalog, col, _uris(0, 1_100))
    anchor_id = int(_sql(catalog, col)[0][0])
    anchor = _sql(catalog, col)[1][0]
    live = LiveIndex(catalog, col, policy=IndexPolicy(flat_threshold=1_000, fold_min=50))
    live.load()
    seen: list[int] = []
    errors: list[str] = []
    searched = threading.Condition()
    stop = threading.Event()

    def search_forever() -> None:
        while not stop.is_set():
            generation = live.generation
            try:
                scores, ids = generation.index.search(anchor, 10)
                if ids[0][0] != anchor_id or abs(scores[0][0] - 1) > 1e-2 or (ids < 0).any():
                    errors.append(f"seq {generation.seq}: {ids[0].tolist()}")
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                errors.append(f"seq {generation.seq}: {exc!r}")
            with searched:
                seen.append(generation.seq)
                searched.notify_all()

    def searched_at(seq: int) -> None:
        with searched:
            assert searched.wait_for(lambda: seen and seen[-1] >= seq, WAIT)

    searcher = threading.Thread(target=search_forever, daemon=True)
    searcher.start()
    try:
        for step in range(6):
            _add(catalog, col, _uris(1_100 + 40 * step, 1_140 + 40 * step), seed=step + 1)
            catalog.commit(col, [], _uris(1 + 10 * step, 6 + 10 * step))
            live.refresh()
            searched_at(live.generation.seq)
            started = live.maintain()  # flat -> IVF first, then folds, in the background
            while live.busy:  # keep writing while the job runs
                _add(catalog, col, [f"file:///during/{step}/{len(seen)}"], seed=len(seen))
                live.refresh()
                searched_at(live.generation.seq)
                live.wait_idle(0.05)
            assert started is None or live.last_job
            searched_at(live.generation.seq)
    finally:
        stop.set()
        searcher.join(WAIT)
    assert not errors, errors[:5]
    assert live.generation.index.spec.kind == "ivf-flat"
    assert len(set(seen)) >= 6
    assert_matches_catalog(live, catalog, col, min_recall=0.9)


def test_snapshot_round_trip_and_replay(catalog: Catalog, tmp_path: Path) -> None:
    col = catalog.ensure_collection("c", "spec", DIM)
    _add(catalog, col, _uris(0, 20))
    live = LiveIndex(catalog, col, tmp_path)
    live.load()
    assert live.write_snapshot() is not None
    _add(catalog, col, ["file:///after"], seed=2)  # after the snapshot: must be replayed
    restarted = LiveIndex(catalog, col, tmp_path)
    assert restarted.load() == "snapshot"
    assert sorted(restarted.generation.index.ids().tolist()) == _sql_ids(catalog, col)
    assert restarted.generation.seq == catalog.head_seq(col.id)


def test_a_snapshot_write_removes_what_a_killed_one_left(catalog: Catalog, tmp_path: Path) -> None:
    col = catalog.ensure_collection("c", "spec", DIM)
    _add(catalog, col, _uris(0, 20))
    directory = tmp_path / "c"
    directory.mkdir()
    leftovers = [directory / ".index-000000000007.faiss.tmp", directory / ".manifest.json.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a snapshot")
        os.utime(path, (time.time() - 60, time.time() - 60))
    live = LiveIndex(catalog, col, tmp_path)
    live.load()
    assert live.write_snapshot() is not None
    assert not any(p.exists() for p in leftovers)
    assert sorted(p.name for p in directory.iterdir())[-1] == "manifest.json"


def test_corrupt_or_foreign_snapshots_fall_back_to_sql(catalog: Catalog, tmp_path: Path) -> None:
    col = catalog.ensure_collection("c", "spec", DIM)
    _add(catalog, col, _uris(0, 5))
    live = LiveIndex(catalog, col, tmp_path)
    live.load()
    path = live.write_snapshot()
    assert path is not None
    path.write_bytes(path.read_bytes()[:50])  # truncated
    again = LiveIndex(catalog, col, tmp_path)
    assert again.load() == "sql"
    assert sorted(again.generation.index.ids().tolist()) == _sql_ids(catalog, col)
    (tmp_path / "c" / MANIFEST).write_text("{not json")
    assert LiveIndex(catalog, col, tmp_path).load() == "sql"
    assert again.write_snapshot() is not None  # valid again, but of an unknown type:
    manifest = json.loads((tmp_path / "c" / MANIFEST).read_text())
    manifest["index"]["kind"] = "warp"
    (tmp_path / "c" / MANIFEST).write_text(json.dumps(manifest))
    assert LiveIndex(catalog, col, tmp_path).load() == "sql"
    manifest["index"]["kind"] = "hnsw"  # the file holds a flat index: refused, not misread
    (tmp_path / "c" / MANIFEST).write_text(json.dumps(manifest))
    assert LiveIndex(catalog, col, tmp_path).load() == "sql"
