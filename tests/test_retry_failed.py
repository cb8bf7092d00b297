"""Failed assets: listing them with reasons, and retrying unchanged ones with ``retry_failed``."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np

from indexer.pipeline import Indexer, Summary
from latent.catalog import Catalog
from latent.models.encoders import Encoder
from tests.conftest import draw_image
from tests.test_indexer import CountingEncoder

NOT_AN_IMAGE = "not an image in a supported format"
TRUNCATED = "damaged or truncated"
REPAIR_SEED = 1000  # a picture none of the library fixture's 24 images repeats


def png_bytes(seed: int) -> bytes:
    """A valid PNG of the seed's picture."""
    buffer = io.BytesIO()
    draw_image(seed).save(buffer, format="PNG")
    return buffer.getvalue()


def truncated_png(size: int) -> bytes:
    """A PNG cut in half and zero-padded to ``size`` bytes: decodes as damaged."""
    head = png_bytes(99)[: size // 2]
    return head + b"\0" * (size - len(head))


def rewrite_keeping_stat(path: Path, data: bytes) -> None:
    """Replace the content with ``data`` of the same length and put the old mtime back.

    The indexer's diff then sees the file as unchanged (same size and mtime).
    """
    st = path.stat()
    assert len(data) == st.st_size
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def broken_pair(root: Path) -> tuple[Path, Path, bytes]:
    """Two same-size non-images: one to repair later, one to stay broken; and the repair."""
    good = png_bytes(REPAIR_SEED)
    fixable, hopeless = root / "fixable.png", root / "hopeless.png"
    fixable.write_bytes(b"x" * len(good))
    hopeless.write_bytes(b"y" * len(good))
    return fixable, hopeless, good


def run(catalog: Catalog, enc: Encoder, root: Path, retry_failed: bool = False) -> Summary:
    indexer = Indexer(catalog, lambda spec: enc, "default", enc.spec, retry_failed=retry_failed)
    return indexer.run([root])


def counts(summary: Summary) -> tuple[int, int, int, int]:
    return summary.indexed, summary.unchanged, summary.failed, summary.deleted


def test_retry_failed_indexes_repaired_files_only(
    catalog: Catalog, encoder: Encoder, library: Path
) -> None:
    enc = CountingEncoder(encoder)
    fixable, hopeless, good = broken_pair(library)
    assert counts(run(catalog, enc, library)) == (24, 0, 2, 0)
    collection = catalog.collection("default")
    before = {a.uri: a for a in catalog.failed_assets(collection.id, 10)}
    assert set(before) == {fixable.as_uri(), hopeless.as_uri()}
    assert all(NOT_AN_IMAGE in (a.error or "") for a in before.values())

    rewrite_keeping_stat(fixable, good)
    rewrite_keeping_stat(hopeless, truncated_png(len(good)))
    assert counts(run(catalog, enc, library)) == (0, 26, 0, 0)  # unchanged: not retried
    assert len(catalog.failed_assets(collection.id, 10)) == 2 and enc.images == 24

    seq = catalog.head_seq(collection.id)
    assert counts(run(catalog, enc, library, retry_failed=True)) == (1, 24, 1, 0)
    assert enc.images == 25  # only the repaired file was encoded: nothing indexed twice

    fixed = catalog.asset(before[fixable.as_uri()].id)  # the same asset id, now indexed
    assert (fixed.state, fixed.error, fixed.width) == ("indexed", None, 96)
    still = catalog.failed_assets(collection.id, 10)
    assert [(a.id, a.state) for a in still] == [(before[hopeless.as_uri()].id, "failed")]
    assert TRUNCATED in (still[0].error or "")  # the new reason replaced the old one

    change = catalog.changes_since(collection, seq)
    assert len(change.added_ids) == 1 and len(change.removed) == 0
    assert catalog.searchable(change.added_ids.tolist()) == {int(change.added_ids[0]): fixed.id}
    expected = encoder.encode_images([draw_image(REPAIR_SEED)])[0]
    assert float(np.dot(catalog.asset_vector(fixed.id, collection.dim), expected)) > 0.999
    assert catalog.counts(collection.id) == {"indexed": 25, "failed": 1, "deleted": 0}

    assert counts(run(catalog, enc, library, retry_failed=True)) == (0, 25, 1, 0)
    assert enc.images == 25


def test_failed_assets_newest_first_per_collection(
    catalog: Catalog, encoder: Encoder, tmp_path: Path
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for root in (first, second):
        root.mkdir()
    (first / "a_old.png").write_bytes(b"x" * 100)
    (first / "b_new.png").write_bytes(b"x" * 100)
    (second / "elsewhere.png").write_bytes(b"x" * 100)
    run(catalog, encoder, first)
    Indexer(catalog, lambda spec: encoder, "other", encoder.spec).run([second])
    time.sleep(1.1)  # SQLite's CURRENT_TIMESTAMP has whole seconds
    rewrite_keeping_stat(first / "a_old.png", truncated_png(100))
    # Only a_old.png is retried and fails anew: the newest failure, though its id is the smaller.
    run(catalog, encoder, first / "a_old.png", retry_failed=True)

    default = catalog.collection("default")
    listed = catalog.failed_assets(default.id, 10)
    assert [Path(a.uri).name for a in listed] == ["a_old.png", "b_new.png"]
    assert TRUNCATED in (listed[0].error or "") and listed[0].updated_at > listed[1].updated_at
    assert [Path(a.uri).name for a in catalog.failed_assets(default.id, 1)] == ["a_old.png"]
    everywhere = catalog.failed_assets(None, 10)
    assert [(a.collection, Path(a.uri).name) for a in everywhere][1:] == [
        ("other", "elsewhere.png"),
        ("default", "b_new.png"),
    ]
