"""Tests of the procedural demo library generator."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from latent.demo import world as demo_world
from latent.demo.world import (
    BACKGROUNDS,
    COLORS,
    POSITIONS,
    SHAPES,
    SIZES,
    generate_library,
    render_labelled_image,
)


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _labels(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "labels.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lib")
    assert generate_library(root, count=60, seed=5, videos=2) == 62
    return root


def test_same_seed_gives_byte_identical_library(library: Path, tmp_path: Path) -> None:
    generate_library(tmp_path, count=60, seed=5, videos=2)
    assert _digests(tmp_path) == _digests(library)


def test_other_seed_gives_other_images(library: Path, tmp_path: Path) -> None:
    generate_library(tmp_path, count=5, seed=6)
    first = _digests(tmp_path)
    assert not set(first.values()) & set(_digests(library).values())


def test_labels_list_every_file_and_only_files(library: Path) -> None:
    labels = _labels(library)
    listed = {row["file"] for row in labels}
    on_disk = {
        p.relative_to(library).as_posix()
        for p in library.rglob("*")
        if p.is_file() and p.name != "labels.jsonl"
    }
    assert listed == on_disk
    assert len(labels) == 62


def test_images_are_png_and_jpeg_of_at_least_128px(library: Path) -> None:
    formats = set()
    for row in _labels(library):
        if "segments" in row:
            continue
        with Image.open(library / row["file"]) as img:
            formats.add(img.format)
            assert min(img.size) >= 128
            assert img.format == {"png": "PNG", "jpg": "JPEG"}[row["file"].rsplit(".", 1)[1]]
    assert formats == {"PNG", "JPEG"}


def test_labels_use_the_vocabulary(library: Path) -> None:
    for row in _labels(library):
        assert row["background"] in BACKGROUNDS
        assert 1 <= len(row["objects"]) <= 3
        positions = [o["position"] for o in row["objects"]]
        assert len(set(positions)) == len(positions)
        for obj in row["objects"]:
            assert obj["shape"] in SHAPES and obj["color"] in COLORS
            assert obj["size"] in SIZES and obj["position"] in POSITIONS


def test_vocabulary_is_covered_by_a_modest_library() -> None:
    rng = np.random.default_rng(0)
    seen: dict[str, set[str]] = {
        "shape": set(),
        "color": set(),
        "size": set(),
        "position": set(),
        "background": set(),
    }
    counts = []
    for _ in range(400):
        scene = demo_world.sample_scene(rng)
        seen["background"].add(scene.background)
        counts.append(len(scene.objects))
        for obj in scene.objects:
            for key in ("shape", "color", "size", "position"):
                seen[key].add(getattr(obj, key))
    assert seen == {
        "shape": set(SHAPES),
        "color": set(COLORS),
        "size": set(SIZES),
        "position": set(POSITIONS),
        "background": set(BACKGROUNDS),
    }
    assert 0.6 < counts.count(1) / len(counts) < 0.9
    assert 3 in counts


def test_object_is_drawn_in_its_colour_at_its_position() -> None:
    scene = demo_world.Scene("gray", (demo_world.DemoObject("square", "red", "large", "top left"),))
    img = np.asarray(demo_world.render_scene(scene, 256, 256, np.random.default_rng(1)), dtype=int)
    top_left, bottom_right = img[64, 64], img[192, 192]
    assert top_left[0] > 150 and top_left[1] < 90 and top_left[2] < 90
    assert abs(int(bottom_right[0]) - int(bottom_right[2])) < 40  # still the gray backdrop


def test_videos_are_mp4_and_gif_with_two_segments(library: Path) -> None:
    videos = [row for row in _labels(library) if "segments" in row]
    assert {row["file"].rsplit(".", 1)[1] for row in videos} == {"mp4", "gif"}
    for row in videos:
        first, second = row["segments"]
        assert first["start"] == 0 and first["end"] == second["start"] < second["end"]
        assert first["objects"] != second["objects"]
        assert row["objects"] == first["objects"]
    mp4 = next(row for row in videos if row["file"].endswith(".mp4"))
    with av.open(str(library / mp4["file"])) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == round(mp4["duration"] * 10)


def test_in_memory_render_gives_image_and_scene() -> None:
    img, scene = render_labelled_image(np.random.default_rng(3), 96, 96)
    assert img.mode == "RGB" and min(img.size) == 96
    assert scene.objects and scene.background in BACKGROUNDS


def test_progress_is_reported_per_file(tmp_path: Path) -> None:
    seen: list[int] = []
    assert generate_library(tmp_path, count=3, seed=0, progress=seen.append) == 3
    assert seen == [1, 2, 3]
