"""The catalog on SQLite and PostgreSQL: assets, vectors, change log, one model per collection."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from latent.catalog import AssetWrite, Catalog
from latent.errors import DimensionMismatch, FailedPrecondition, NotFound


def _unit(rng: np.random.Generator, n: int, dim: int = 8) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _write(uri: str, vectors: np.ndarray | None, **kw) -> AssetWrite:
    return AssetWrite(
        uri=uri, media_type="image", size=10, mtime_ns=1, content_hash="h", vectors=vectors, **kw
    )


def test_write_replace_delete_are_logged_in_order(catalog: Catalog) -> None:
    col = catalog.ensure_collection("c", "spec", 8)
    rng = np.random.default_rng(0)
    (a,) = catalog.commit(col, [_write("file:///a", _unit(rng, 1))])
    first = catalog.changes_since(col, 0)
    assert first.added_ids.tolist() and first.removed.tolist() == []
    np.testing.assert_allclose(first.added_vectors, catalog.all_vectors(col).__next__()[1], atol=0)

    new_vec = _unit(rng, 1)
    catalog.commit(col, [_write("file:///a", new_vec)])
    replaced = catalog.changes_since(col, first.last_seq)
    assert replaced.removed.tolist() == first.added_ids.tolist()
    assert len(replaced.added_ids) == 1 and replaced.added_ids[0] > first.added_ids[0]
    np.testing.assert_allclose(replaced.added_vectors, new_vec, atol=2e-3)  # float16 storage

    catalog.commit(col, [], ["file:///a"])
    gone = catalog.changes_since(col, replaced.last_seq)
    assert gone.removed.tolist() == replaced.added_ids.tolist()
    assert catalog.asset(a).state == "deleted"
    assert catalog.counts(col.id) == {"indexed": 0, "failed": 0, "deleted": 1}
    assert catalog.head_seq(col.id) == gone.last_seq == 4


def test_changes_fold_an_add_then_delete_into_a_removal(catalog: Catalog) -> None:
    col = catalog.ensure_collection("c", "spec", 8)
    catalog.commit(col, [_write("file:///a", _unit(np.random.default_rng(1), 1))])
    catalog.commit(col, [], ["file:///a"])
    batch = catalog.changes_since(col, 0)
    assert batch.added_ids.tolist() == [] and len(batch.removed) == 1


def test_row_updates_are_logged_without_touching_vectors(catalog: Catalog) -> None:
    col = catalog.ensure_collection("c", "spec", 8)
    rng = np.random.default_rng(2)
    a, b = catalog.commit(col, [_write("file:///a", _unit(rng, 1)), _write("file:///b", None)])
    added = catalog.changes_since(col, 0)
    catalog.set_metadata({a: {"tag": "x"}})
    catalog.touch(col.id, "file:///a", 99)
    catalog.set_metadata({b: {"tag": "y"}})  # a failed asset has no vectors: nothing to log
    batch = catalog.changes_since(col, added.last_seq)
    assert batch.updated.tolist() == added.added_ids.tolist()
    assert batch.added_ids.tolist() == [] and batch.removed.tolist() == []
    assert catalog.asset(a).metadata == {"tag": "x"} and catalog.asset(a).mtime_ns == 99
    # An update of a vector added in the same range is part of that addition.
    assert catalog.changes_since(col, 0).added_ids.tolist() == added.added_ids.tolist()
    assert catalog.changes_since(col, 0).updated.tolist() == []


def test_failed_asset_has_no_vectors_and_keeps_its_reason(catalog: Catalog) -> None:
    col = catalog.ensure_collection("c", "spec", 8)
    (a,) = catalog.commit(col, [_write("file:///bad", None, state="failed", error="cannot decode")])
    record = catalog.asset(a)
    assert (record.state, record.error) == ("failed", "cannot decode")
    with pytest.raises(NotFound, match="state failed"):
        catalog.asset_vector(a, 8)


def test_one_model_per_collection(catalog: Catalog) -> None:
    catalog.ensure_collection("c", "model-a", 8)
    with pytest.raises(FailedPrecondition, match="model-a"):
        catalog.ensure_collection("c", "model-b", 8)
    with pytest.raises(FailedPrecondition):
        catalog.ensure_collection("c", "model-a", 16)


def test_vectors_of_the_wrong_dimension_are_refused(catalog: Catalog) -> None:
    col = catalog.ensure_collection("c", "spec", 8)
    with pytest.raises(DimensionMismatch):
        catalog.commit(col, [_write("file:///a", np.ones((1, 4), np.float32))])
    assert catalog.counts(col.id)["indexed"] == 0  # nothing half-written


def test_unknown_collection_and_asset(catalog: Catalog) -> None:
    with pytest.raises(NotFound, match="nope"):
        catalog.collection("nope")
    with pytest.raises(NotFound):
        catalog.asset(12345)


def test_concurrent_writers_leave_a_gapless_ordered_log(catalog: Catalog) -> None:
    """Two writers at once: every change is logged once, seqs strictly increase."""
    col = catalog.ensure_collection("c", "spec", 8)
    other = Catalog(catalog.url)

    def write(cat: Catalog, prefix: str) -> None:
        rng = np.random.default_rng(len(prefix))
        for i in range(15):
            cat.commit(col, [_write(f"file:///{prefix}{i}", _unit(rng, 1))])

    threads = [
        threading.Thread(target=write, args=(c, p)) for c, p in ((catalog, "x"), (other, "yy"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    batch = catalog.changes_since(col, 0)
    assert len(batch.added_ids) == len(set(batch.added_ids.tolist())) == 30
    ids, _ = next(catalog.all_vectors(col))
    assert sorted(ids.tolist()) == sorted(batch.added_ids.tolist())
