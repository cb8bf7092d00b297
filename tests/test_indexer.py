"""Indexing runs over real files: diff, failures, deletions, symlinks, on both backends."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer.pipeline import Indexer, Summary
from latent.catalog import Catalog
from latent.errors import FailedPrecondition, NotFound
from latent.models.encoders import Encoder
from tests.conftest import draw_image, write_library


class CountingEncoder:
    """The real encoder, counting the images it embeds."""

    def __init__(self, inner: Encoder) -> None:
        self.inner, self.spec, self.dim, self.images = inner, inner.spec, inner.dim, 0

    def encode_images(self, images):
        self.images += len(images)
        return self.inner.encode_images(images)

    def encode_texts(self, texts):
        return self.inner.encode_texts(texts)


@pytest.fixture
def counting(encoder: Encoder) -> CountingEncoder:
    return CountingEncoder(encoder)


def run(
    catalog: Catalog, enc: CountingEncoder, *paths: Path, collection: str = "default"
) -> Summary:
    return Indexer(catalog, lambda spec: enc, collection, enc.spec, batch_size=5).run(paths)


def test_index_then_reindex_encodes_nothing(
    catalog: Catalog, counting: CountingEncoder, library: Path
) -> None:
    first = run(catalog, counting, library)
    assert (first.indexed, first.unchanged, first.failed, first.deleted) == (24, 0, 0, 0)
    assert counting.images == 24
    second = run(catalog, counting, library)
    assert (second.indexed, second.unchanged) == (0, 24)
    assert counting.images == 24
    assert str(second).startswith("indexed 0, unchanged 24, failed 0, deleted 0 in ")


def test_changed_touched_and_deleted_files(
    catalog: Catalog, counting: CountingEncoder, library: Path
) -> None:
    run(catalog, counting, library)
    files = sorted(library.rglob("*.png"))
    changed, touched, removed = files[0], files[1], files[2]
    draw_image(999).save(changed)
    os.utime(changed, ns=(1, 1))  # a new mtime; the size may or may not change
    os.utime(touched, ns=(2, 2))  # same bytes, new mtime: confirmed by hash, not re-encoded
    removed.unlink()
    before = counting.images
    summary = run(catalog, counting, library)
    assert (summary.indexed, summary.unchanged, summary.deleted) == (1, 22, 1)
    assert counting.images == before + 1
    col = catalog.collection("default")
    assert col.counts == {"indexed": 23, "failed": 0, "deleted": 1}
    assert catalog.file_states(col.id)[touched.as_uri()].mtime_ns == 2


def test_undecodable_file_fails_and_the_run_goes_on(
    catalog: Catalog, counting: CountingEncoder, library: Path
) -> None:
    (library / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (library / "empty.png").write_bytes(b"")
    summary = run(catalog, counting, library)
    assert (summary.indexed, summary.failed) == (24, 2)
    states = catalog.file_states(catalog.collection("default").id)
    broken = catalog.asset(states[(library / "broken.jpg").as_uri()].asset_id)
    assert broken.state == "failed"
    assert broken.error and ("not an image" in broken.error or "cannot decode" in broken.error)
    # fixing the file re-indexes it
    draw_image(5).save(library / "broken.jpg")
    again = run(catalog, counting, library)
    assert again.indexed == 1


def test_a_reappearing_file_is_indexed_again(
    catalog: Catalog, counting: CountingEncoder, library: Path
) -> None:
    run(catalog, counting, library)
    victim = sorted(library.rglob("*.jpg"))[0]
    data = victim.read_bytes()
    victim.unlink()
    assert run(catalog, counting, library).deleted == 1
    victim.write_bytes(data)
    assert run(catalog, counting, library).indexed == 1
    assert catalog.collection("default").counts["indexed"] == 24


def test_indexing_one_root_does_not_delete_another(
    catalog: Catalog, counting: CountingEncoder, tmp_path: Path
) -> None:
    a, b = tmp_path / "a", tmp_path / "ab"  # "ab" shares a string prefix with "a"
    write_library(a, 3)
    write_library(b, 3, start=10)
    run(catalog, counting, a)
    summary = run(catalog, counting, b)
    assert (summary.indexed, summary.deleted) == (3, 0)
    assert catalog.collection("default").counts["indexed"] == 6


def test_symlinks_never_leave_the_library(
    catalog: Catalog, counting: CountingEncoder, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    write_library(outside, 2)
    lib = tmp_path / "lib"
    write_library(lib, 2, start=5)
    (lib / "escape").symlink_to(outside, target_is_directory=True)
    (lib / "alias.png").symlink_to(next(lib.rglob("*.png")))
    summary = run(catalog, counting, lib)
    assert summary.indexed == 3  # two files plus the in-library alias, nothing from outside
    uris = catalog.file_states(catalog.collection("default").id)
    assert not any("outside" in u or "escape" in u for u in uris)


def test_exif_orientation_and_modes(
    catalog: Catalog, counting: CountingEncoder, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    img = Image.new("RGB", (40, 20), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: displayed as 20x40
    img.save(lib / "rotated.jpg", exif=exif)
    Image.new("RGBA", (10, 10), (0, 0, 255, 128)).save(lib / "alpha.png")
    Image.new("L", (10, 12), 100).save(lib / "gray.png")
    Image.new("P", (10, 14)).save(lib / "palette.gif")
    assert run(catalog, counting, lib).indexed == 4
    states = catalog.file_states(catalog.collection("default").id)
    rotated = catalog.asset(states[(lib / "rotated.jpg").as_uri()].asset_id)
    assert (rotated.width, rotated.height) == (20, 40)


def test_decompression_bomb_is_a_failed_asset(
    catalog: Catalog, counting: CountingEncoder, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    Image.new("RGB", (200, 200)).save(lib / "big.png")
    indexer = Indexer(catalog, lambda spec: counting, "default", counting.spec, max_pixels=100)
    summary = indexer.run([lib])
    assert summary.failed == 1 and "decompression-bomb" in summary.failures[0][1]


def test_another_model_cannot_write_to_a_collection(
    catalog: Catalog, counting: CountingEncoder, library: Path
) -> None:
    run(catalog, counting, library)
    other = Indexer(catalog, lambda spec: counting, "default", "local-dir:/elsewhere")
    with pytest.raises(FailedPrecondition, match="new --collection"):
        other.run([library], model_explicit=True)


def test_missing_path_is_a_clear_error(
    catalog: Catalog, counting: CountingEncoder, tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        run(catalog, counting, tmp_path / "nope")


def test_stored_vectors_match_the_encoder(
    catalog: Catalog, counting: CountingEncoder, library: Path
) -> None:
    run(catalog, counting, library)
    col = catalog.collection("default")
    path = sorted(library.rglob("*.png"))[0]
    asset_id = catalog.file_states(col.id)[path.as_uri()].asset_id
    with Image.open(path) as im:
        expected = counting.inner.encode_images([im.convert("RGB")])[0]
    np.testing.assert_allclose(catalog.asset_vector(asset_id, col.dim), expected, atol=3e-3)


def test_metadata_sidecar_is_attached_and_updated_without_reencoding(
    catalog: Catalog, counting: CountingEncoder, library: Path
) -> None:
    from indexer.metadata import load_metadata

    files = sorted(library.rglob("*.png"))[:2]
    sidecar = library / "labels.jsonl"
    sidecar.write_text(
        "\n".join(
            json.dumps({"file": str(f.relative_to(library)), "color": c})
            for f, c in zip(files, "ab", strict=True)
        )
        + "\n"
    )
    Indexer(
        catalog, lambda s: counting, "default", counting.spec, metadata=load_metadata(sidecar)
    ).run([library])
    col = catalog.collection("default")
    states = catalog.file_states(col.id)
    assert states[files[0].as_uri()].metadata == {"color": "a"}
    encoded = counting.images
    sidecar.write_text(
        json.dumps({"file": str(files[0].relative_to(library)), "color": "z"}) + "\n"
    )
    Indexer(
        catalog, lambda s: counting, "default", counting.spec, metadata=load_metadata(sidecar)
    ).run([library])
    states = catalog.file_states(col.id)
    assert states[files[0].as_uri()].metadata == {"color": "z"}
    assert states[files[1].as_uri()].metadata == {"color": "b"}  # not named: kept
    assert counting.images == encoded


def test_bad_metadata_sidecar_names_the_line(tmp_path: Path) -> None:
    from indexer.metadata import load_metadata
    from latent.errors import InvalidArgument

    sidecar = tmp_path / "m.jsonl"
    sidecar.write_text('{"file": "a.png"}\n[1, 2]\n')
    with pytest.raises(InvalidArgument, match=r"m.jsonl:2: expected an object"):
        load_metadata(sidecar)
