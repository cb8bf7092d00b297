"""Live index generations: rebuild from SQL, replay the log, snapshots and their validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latent.catalog import AssetWrite, Catalog
from latent.live import MANIFEST, LiveIndex


def _add(catalog: Catalog, col, uris: list[str], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    writes = []
    for uri in uris:
        v = rng.standard_normal((1, col.dim)).astype(np.float32)
        writes.append(AssetWrite(uri, "image", 1, 1, "h", vectors=v / np.linalg.norm(v)))
    catalog.commit(col, writes)


def _sql_ids(catalog: Catalog, col) -> list[int]:
    return sorted(int(i) for ids, _ in catalog.all_vectors(col) for i in ids)


def test_rebuild_then_refresh_follows_the_catalog(catalog: Catalog) -> None:
    col = catalog.ensure_collection("c", "spec", 8)
    _add(catalog, col, [f"file:///{i}" for i in range(10)])
    live = LiveIndex(catalog, col)
    assert live.load() == "sql"
    old = live.generation
    _add(catalog, col, ["file:///new"], seed=1)
    catalog.commit(col, [], ["file:///0", "file:///1"])
    assert live.refresh() == 3
    assert sorted(live.generation.index.ids().tolist()) == _sql_ids(catalog, col)
    assert len(old.index) == 10  # the published generation never changes under a reader
    assert live.refresh() == 0


def test_snapshot_round_trip_and_replay(catalog: Catalog, tmp_path: Path) -> None:
    col = catalog.ensure_collection("c", "spec", 8)
    _add(catalog, col, [f"file:///{i}" for i in range(20)])
    live = LiveIndex(catalog, col, tmp_path)
    live.load()
    assert live.write_snapshot() is not None
    _add(catalog, col, ["file:///after"], seed=2)  # after the snapshot: must be replayed
    restarted = LiveIndex(catalog, col, tmp_path)
    assert restarted.load() == "snapshot"
    assert sorted(restarted.generation.index.ids().tolist()) == _sql_ids(catalog, col)
    assert restarted.generation.seq == catalog.head_seq(col.id)


def test_corrupt_or_foreign_snapshots_fall_back_to_sql(catalog: Catalog, tmp_path: Path) -> None:
    col = catalog.ensure_collection("c", "spec", 8)
    _add(catalog, col, [f"file:///{i}" for i in range(5)])
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
