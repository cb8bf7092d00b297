"""Hostile libraries: loops, escapes, special files, odd names, broken files and races."""

from __future__ import annotations

import logging
import os
import socket
import stat
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from indexer import scan as scan_module
from indexer.pipeline import Indexer, Summary
from indexer.scan import ScannedFile, path_from_uri
from latent.catalog import Catalog
from latent.media import images
from latent.models.encoders import Encoder
from tests.conftest import TINY_MODEL, draw_image, write_library

REPO = Path(__file__).resolve().parent.parent


def run(catalog: Catalog, encoder: Encoder, root: Path, **options: object) -> Summary:
    factory = lambda spec: encoder  # noqa: E731
    return Indexer(catalog, factory, "default", encoder.spec, batch_size=4, **options).run([root])


def uris(catalog: Catalog) -> dict[str, str]:
    """uri -> state of every asset of the default collection."""
    states = catalog.file_states(catalog.collection("default").id)
    return {uri: s.state for uri, s in states.items()}


def error_of(catalog: Catalog, path: Path) -> str:
    state = catalog.file_states(catalog.collection("default").id)[path.as_uri()]
    asset = catalog.asset(state.asset_id)
    assert asset.state == "failed"
    return asset.error or ""


def loop_library(root: Path) -> list[Path]:
    """Six images, with links to the root, to a parent, to a sibling listed before it, a
    cycle of two and a self-loop."""
    files = write_library(root, 6)
    (root / "a_link").symlink_to("set1", target_is_directory=True)  # sorts before set1
    (root / "set0" / "to_root").symlink_to(root, target_is_directory=True)
    (root / "set1" / "deeper").mkdir()
    (root / "set1" / "deeper" / "up").symlink_to("..", target_is_directory=True)
    for a, b in (("x", "y"), ("y", "x")):
        (root / a).mkdir(exist_ok=True)
        (root / b).mkdir(exist_ok=True)
        (root / a / f"to_{b}").symlink_to(f"../{b}", target_is_directory=True)
    files += [root / "x" / "in_x.png", root / "y" / "in_y.png"]
    draw_image(100).save(files[-2])
    draw_image(101).save(files[-1])
    (root / "l1").symlink_to("l2")  # l1 -> l2 -> l1: ELOOP on every stat
    (root / "l2").symlink_to("l1")
    return files


@pytest.mark.timeout(60)
def test_symlink_loops_index_every_file_once(
    catalog: Catalog, encoder: Encoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lib = tmp_path / "lib"
    files = loop_library(lib)
    with caplog.at_level(logging.INFO, logger="indexer.scan"):
        summary = run(catalog, encoder, lib)
    assert (summary.indexed, summary.failed) == (len(files), 0)
    assert set(uris(catalog)) == {f.as_uri() for f in files}  # each under its real name
    assert "a loop" in caplog.text and "to_root" in caplog.text
    assert "l1: cannot stat it" in caplog.text
    assert run(catalog, encoder, lib).unchanged == len(files)


@pytest.mark.timeout(120)
def test_cli_indexes_a_looping_library_holding_its_data_dir(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    files = loop_library(lib)
    data = lib / "data"  # the catalog and snapshots inside the library: never indexed
    data.mkdir()
    draw_image(7).save(data / "not_content.png")
    env = {**os.environ, "ASSETSEARCH_DATA_DIR": str(data), "ASSETSEARCH_MODEL": TINY_MODEL}
    env.pop("ASSETSEARCH_DATABASE_URL", None)
    for expected in (f"indexed {len(files)}, unchanged 0,", f"indexed 0, unchanged {len(files)},"):
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", "index", str(lib)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=100,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1].startswith(expected + " failed 0, deleted 0")
    assert (data / "catalog.sqlite3").exists()


def test_data_dir_inside_the_library_is_never_indexed(
    catalog: Catalog, encoder: Encoder, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    files = write_library(lib, 3)
    write_library(lib / "state", 2, start=10)
    (lib / "alias").symlink_to(lib / "state" / "set0", target_is_directory=True)
    summary = run(catalog, encoder, lib, exclude=[lib / "state"])
    assert summary.indexed == 3
    assert set(uris(catalog)) == {f.as_uri() for f in files}


def test_links_out_of_the_library(catalog: Catalog, encoder: Encoder, tmp_path: Path) -> None:
    outside = write_library(tmp_path / "outside", 3)
    lib = tmp_path / "lib"
    files = write_library(lib, 2, start=5)
    (lib / "escape").symlink_to(tmp_path / "outside", target_is_directory=True)
    (lib / "parent").symlink_to("..", target_is_directory=True)
    (lib / "out.png").symlink_to(outside[1])
    # A hard link is another name of the same file: it is a file of the library.
    os.link(outside[0], lib / "hard.png")
    summary = run(catalog, encoder, lib)
    assert summary.indexed == 3
    assert set(uris(catalog)) == {f.as_uri() for f in files} | {(lib / "hard.png").as_uri()}


@pytest.mark.timeout(60)
def test_fifo_and_socket_are_never_opened(
    catalog: Catalog, encoder: Encoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lib = tmp_path / "lib"
    files = write_library(lib, 2)
    os.mkfifo(lib / "fifo.jpg")  # opening it for reading would block forever
    (lib / "link.png").symlink_to(lib / "fifo.jpg")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(lib / "sock.jpg"))
        with caplog.at_level(logging.INFO, logger="indexer.scan"):
            summary = run(catalog, encoder, lib)
    assert (summary.indexed, summary.failed) == (2, 0)
    assert set(uris(catalog)) == {f.as_uri() for f in files}
    assert caplog.text.count("not a regular file") == 3


@pytest.mark.timeout(60)
def test_device_file_is_never_opened(catalog: Catalog, encoder: Encoder, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    files = write_library(lib, 2)
    try:  # a character device like /dev/zero: reading it never ends
        os.mknod(lib / "x.jpg", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except OSError as exc:
        pytest.skip(f"cannot create a device file here (needs root with CAP_MKNOD): {exc}")
    summary = run(catalog, encoder, lib)
    assert (summary.indexed, summary.failed) == (2, 0)
    assert set(uris(catalog)) == {f.as_uri() for f in files}


def test_unreadable_folder_is_skipped(
    catalog: Catalog, encoder: Encoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lib = tmp_path / "lib"
    files = write_library(lib, 6)
    locked = lib / "set1"
    with caplog.at_level(logging.WARNING, logger="indexer.scan"), _unreadable(locked):
        summary = run(catalog, encoder, lib)
    kept = {f.as_uri() for f in files if f.parent != locked}
    assert summary.indexed == len(kept) == 4
    assert set(uris(catalog)) == kept
    assert f"skipped folder {locked}: cannot read it: Permission denied" in caplog.text


class _unreadable:
    """``chmod 000`` on a folder; as root (where permissions do not apply) the same EACCES
    from ``os.scandir``, patched with autospec."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.patch: mock._patch[mock.MagicMock] | None = None

    def __enter__(self) -> None:
        if os.geteuid() != 0:
            self.folder.chmod(0)
            return
        real = os.scandir

        def scandir(path: object = None) -> object:
            if Path(str(path)) == self.folder:
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)  # type: ignore[arg-type]

        self.patch = mock.patch.object(scan_module.os, "scandir", autospec=True)
        self.patch.start().side_effect = scandir

    def __exit__(self, *exc: object) -> None:
        if self.patch:
            self.patch.stop()
        else:
            self.folder.chmod(0o755)


def test_odd_names_and_deep_paths_round_trip(
    catalog: Catalog, encoder: Encoder, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    latin1 = Path(os.fsdecode(os.fsencode(lib) + b"/caf\xe9 \xff.png"))  # not UTF-8
    long_name = lib / ("n" * 251 + ".png")  # 255 bytes, the usual NAME_MAX
    deep = lib.joinpath(*(f"level{i:02d}" for i in range(60))) / "deep.jpg"
    deep.parent.mkdir(parents=True)
    for seed, path in enumerate((latin1, long_name, deep)):
        draw_image(seed).save(path, format="PNG" if path.suffix == ".png" else "JPEG")
    assert len(os.fsencode(long_name.name)) == 255
    summary = run(catalog, encoder, lib)
    assert (summary.indexed, summary.failed) == (3, 0)
    stored = uris(catalog)
    assert set(stored) == {p.as_uri() for p in (latin1, long_name, deep)}
    assert {path_from_uri(u) for u in stored} == {latin1, long_name, deep}
    assert all(path_from_uri(u).is_file() for u in stored)
    assert run(catalog, encoder, lib).unchanged == 3


def _png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR declares ``width`` x ``height``, with one small IDAT."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes(64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _zip_bytes(path: Path) -> bytes:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.txt", "hello")
    return path.read_bytes()


def test_broken_files_fail_with_reasons_and_nothing_is_indexed_twice(
    catalog: Catalog, encoder: Encoder, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    good = write_library(lib, 3)
    bad = lib / "bad"
    bad.mkdir()
    jpeg, png = good[0].read_bytes(), good[1].read_bytes()
    cases = {
        "empty.jpg": (b"", "empty file (0 bytes)"),
        "cut.jpg": (jpeg[: len(jpeg) // 2], "damaged or truncated"),
        "cut.png": (png[: len(png) // 2], "damaged or truncated"),
        "page.jpg": (
            b"<!DOCTYPE html><html><body>404</body></html>",
            "the content is an HTML page",
        ),
        "archive.jpg": (_zip_bytes(tmp_path / "a.zip"), "the content is a ZIP archive"),
        "bomb.png": (_png_header(100_000, 100_000), "image too large"),
    }
    for name, (data, _) in cases.items():
        (bad / name).write_bytes(data)
    huge = bad / "huge.png"
    with huge.open("wb") as fh:
        fh.truncate(20 * 2**30)  # sparse: 20 GiB that take no disk
    summary = run(catalog, encoder, lib)
    assert (summary.indexed, summary.failed) == (3, len(cases) + 1)
    for name, (_, reason) in cases.items():
        assert reason in error_of(catalog, bad / name), name
    assert error_of(catalog, huge).startswith(
        "file too large: 20.0 GiB is above the 2.0 GiB limit (ASSETSEARCH_MAX_FILE_BYTES)"
    )
    assert error_of(catalog, bad / "bomb.png").count("10000000000 pixels") == 1
    counts = catalog.collection("default").counts
    again = run(catalog, encoder, lib)
    assert (again.indexed, again.failed, again.unchanged) == (0, 0, len(cases) + 4)
    assert (
        catalog.collection("default").counts
        == counts
        == {
            "indexed": 3,
            "failed": len(cases) + 1,
            "deleted": 0,
        }
    )


def test_files_deleted_or_rewritten_between_scan_and_read(
    catalog: Catalog, encoder: Encoder, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    files = write_library(lib, 4)
    gone, changed = files[0], files[1]
    new_image = draw_image(77, size=(64, 48))

    def racing(root: Path, exclude: object = ()) -> Iterator[ScannedFile]:
        for f in real_scan(root, exclude):  # type: ignore[arg-type]
            if f.path == gone:
                gone.unlink()
            elif f.path == changed:
                new_image.save(changed)  # another size and mtime than the scan saw
            yield f

    real_scan = scan_module.scan
    with mock.patch("indexer.pipeline.scan", autospec=True, side_effect=racing):
        summary = run(catalog, encoder, lib)
    assert (summary.indexed, summary.failed, summary.deleted) == (3, 0, 0)
    stored = uris(catalog)
    assert gone.as_uri() not in stored and len(stored) == 3
    col = catalog.collection("default")
    asset = catalog.asset(catalog.file_states(col.id)[changed.as_uri()].asset_id)
    assert (asset.width, asset.height) == (64, 48)  # the new content, not the scanned one
    np.testing.assert_allclose(
        catalog.asset_vector(asset.id, col.dim), encoder.encode_images([new_image])[0], atol=3e-3
    )
    assert run(catalog, encoder, lib).unchanged == 3  # the new size and mtime were recorded


def test_a_known_file_deleted_before_its_read_is_marked_deleted(
    catalog: Catalog, encoder: Encoder, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    files = write_library(lib, 3)
    run(catalog, encoder, lib)
    victim = files[2]
    draw_image(50).save(victim)  # changed, so the next run reads it again

    def racing(root: Path, exclude: object = ()) -> Iterator[ScannedFile]:
        for f in real_scan(root, exclude):  # type: ignore[arg-type]
            if f.path == victim:
                victim.unlink()
            yield f

    real_scan = scan_module.scan
    with mock.patch("indexer.pipeline.scan", autospec=True, side_effect=racing):
        summary = run(catalog, encoder, lib)
    assert (summary.indexed, summary.failed, summary.deleted) == (0, 0, 1)
    assert uris(catalog)[victim.as_uri()] == "deleted"


def test_a_decoder_bug_costs_one_file(catalog: Catalog, encoder: Encoder, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    write_library(lib, 4)
    victim = lib / "victim.png"
    draw_image(9, size=(33, 33)).save(victim)
    real_decode = images.decode_image_file

    def buggy(source: object, max_pixels: int) -> images.DecodedImage:
        decoded = real_decode(source, max_pixels)  # type: ignore[arg-type]
        if decoded.width == 33:
            raise RuntimeError("unexpected Pillow bug")
        return decoded

    with mock.patch("indexer.embed.decode_image_file", autospec=True, side_effect=buggy):
        summary = run(catalog, encoder, lib)
    assert (summary.indexed, summary.failed) == (4, 1)
    assert error_of(catalog, victim) == (
        "the image decoder failed unexpectedly: RuntimeError: unexpected Pillow bug"
    )
