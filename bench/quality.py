"""Retrieval quality and cost of a model on a fresh demo library (table + BENCHMARKS.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402 - bench/ is a folder of scripts, not a package

from latent.demo.train import captions  # noqa: E402
from latent.demo.train.captions import Query  # noqa: E402
from latent.demo.world import COLORS, DemoObject, Scene, generate_library  # noqa: E402

BENCH_SEED = 20261124  # never used by the trainer (it draws from seeds 0..N with other streams)
LEVELS = ("color+shape", "+size", "+position", "+background")
TARGETS = {"template": 0.90, "held_out": 0.70, "image": 0.90, "arithmetic": 0.80}


class EncoderLike(Protocol):
    """The part of latent.models.encoders.Encoder the benchmark uses."""

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray: ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Library:
    """A generated library: its scenes, file paths and image embeddings."""

    scenes: list[Scene]
    paths: list[Path]
    vectors: np.ndarray


def load_encoder(spec: str) -> EncoderLike:
    """Loads a model through assetsearch's one loader.

    Args:
        spec: A model spec ("builtin:demo", "local-dir:PATH", ...).

    Returns:
        An object with encode_images and encode_texts (L2-normalised float32 rows).
    """
    from latent.models.encoders import load_encoder as core_load

    return core_load(spec)


def _scene(label: dict) -> Scene:
    objs = tuple(DemoObject(**o) for o in label["objects"])
    return Scene(label["background"], objs)


def build_library(
    encoder: EncoderLike, directory: Path, count: int, seed: int
) -> tuple[Library, float]:
    """Generates (or reuses) a library and embeds every image.

    Returns:
        The library and the image throughput in images/s (decode + preprocess + vision tower).
    """
    labels_file = directory / "labels.jsonl"
    if not labels_file.exists():
        generate_library(directory, count=count, seed=seed)
    rows = [json.loads(line) for line in labels_file.read_text().splitlines()]
    rows = [r for r in rows if "segments" not in r][:count]
    paths = [directory / r["file"] for r in rows]
    started = time.perf_counter()
    chunks = []
    for start in range(0, len(paths), 64):
        images = [Image.open(p).convert("RGB") for p in paths[start : start + 64]]
        chunks.append(encoder.encode_images(images))
    rate = len(paths) / (time.perf_counter() - started)
    return Library([_scene(r) for r in rows], paths, np.concatenate(chunks)), rate


def level_query(obj: DemoObject, background: str, level: int) -> Query:
    """The query of one difficulty level for an object (0 = colour+shape ... 3 = +background)."""
    size = obj.size if level == 1 else None
    position = obj.position if level == 2 else None
    bg = background if level == 3 else None
    return Query(((obj.shape, obj.color, size, position),), bg)


def precision_at(
    scores: np.ndarray, relevant: np.ndarray, k: int = 10, exclude: int | None = None
) -> float:
    """Precision of the top min(k, #relevant) hits (so rare combinations are not capped)."""
    if exclude is not None:
        scores = scores.copy()
        scores[exclude] = -np.inf
        relevant = relevant.copy()
        relevant[exclude] = False
    k = max(1, min(k, int(relevant.sum())))
    top = np.argsort(-scores, kind="stable")[:k]
    return float(relevant[top].mean())


def text_precision(
    encoder: EncoderLike,
    lib: Library,
    vocab: captions.Vocabulary,
    per_level: int,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Mean precision@10 of text queries, per level, phrased in the given vocabulary."""
    results = {}
    for level, name in enumerate(LEVELS):
        queries, texts = [], []
        for i in rng.choice(len(lib.scenes), per_level, replace=False):
            scene = lib.scenes[int(i)]
            obj = scene.objects[int(rng.integers(len(scene.objects)))]
            q = level_query(obj, scene.background, level)
            queries.append(q)
            texts.append(captions.phrase(q, vocab, rng))
        vecs = encoder.encode_texts(texts)
        scores = [
            precision_at(lib.vectors @ v, np.array([q.matches(s) for s in lib.scenes]))
            for q, v in zip(queries, vecs, strict=True)
        ]
        results[name] = float(np.mean(scores))
        results[name + " example"] = texts[0]  # type: ignore[assignment]
    return results


def _single_object_ids(lib: Library, n: int, rng: np.random.Generator) -> list[int]:
    ids = [i for i, s in enumerate(lib.scenes) if len(s.objects) == 1]
    return [int(i) for i in rng.choice(ids, min(n, len(ids)), replace=False)]


def _has(scene: Scene, shape: str, color: str) -> bool:
    return any(o.shape == shape and o.color == color for o in scene.objects)


def image_precision(lib: Library, n: int, rng: np.random.Generator) -> float:
    """Mean share of an image's top-10 neighbours with an object of its shape and colour."""
    scores = []
    for i in _single_object_ids(lib, n, rng):
        obj = lib.scenes[i].objects[0]
        rel = np.array([_has(s, obj.shape, obj.color) for s in lib.scenes])
        scores.append(precision_at(lib.vectors @ lib.vectors[i], rel, exclude=i))
    return float(np.mean(scores))


def arithmetic_precision(
    encoder: EncoderLike, lib: Library, n: int, rng: np.random.Generator
) -> float:
    """image(X-coloured S) - "X" + "Y": share of the top-10 that are Y-coloured S."""
    words = encoder.encode_texts(list(COLORS))
    scores = []
    for i in _single_object_ids(lib, n, rng):
        obj = lib.scenes[i].objects[0]
        target = str(rng.choice([c for c in COLORS if c != obj.color]))
        q = lib.vectors[i] - words[COLORS.index(obj.color)] + words[COLORS.index(target)]
        rel = np.array([_has(s, obj.shape, target) for s in lib.scenes])
        scores.append(precision_at(lib.vectors @ (q / np.linalg.norm(q)), rel, exclude=i))
    return float(np.mean(scores))


EXAMPLES_PER_SIDE = 10
PATH_STEPS = 5


def _examples(lib: Library, colour: str, not_shape: str) -> list[int]:
    """Single-object images of the colour in any other shape."""
    return [
        i
        for i, s in enumerate(lib.scenes)
        if len(s.objects) == 1 and s.objects[0].color == colour and s.objects[0].shape != not_shape
    ]


def _moved_precision(lib: Library, i: int, direction: np.ndarray, shape: str, target: str) -> float:
    """P@10 that image i + unit(direction) finds `target`-coloured `shape`s (i left out)."""
    q = lib.vectors[i] + direction / np.linalg.norm(direction)
    rel = np.array([_has(s, shape, target) for s in lib.scenes])
    return precision_at(lib.vectors @ (q / np.linalg.norm(q)), rel, exclude=i)


def _transfer_case(lib: Library, rng: np.random.Generator) -> tuple[int, str, str, str] | None:
    """A random single-object image (colour X, shape S) and a colour Y with examples of both."""
    i = _single_object_ids(lib, 1, rng)[0]
    obj = lib.scenes[i].objects[0]
    target = str(rng.choice([c for c in COLORS if c != obj.color]))
    if not any(_has(s, obj.shape, target) for s in lib.scenes):
        return None
    return i, obj.shape, obj.color, target


def direction_transfer(
    encoder: EncoderLike, lib: Library, n: int, rng: np.random.Generator
) -> dict[str, float]:
    """A colour direction made from example sets of *other* shapes, applied to an image.

    For an image of an X-coloured S and a colour Y: from images, the direction is the
    mean of up to 10 single Y-coloured objects minus the mean of up to 10 X-coloured
    ones, none of shape S; from texts, mean("a Y <shape>") - mean("a X <shape>") over
    the shapes other than S. The image plus the unit direction (as `asset:ID + dir:NAME`
    does) should find Y-coloured S's: P@10 of that, the image itself left out.
    """
    from latent.demo.world import SHAPES
    from latent.query.navigation import direction_from_examples

    phrases = [f"a {c} {s}" for c in COLORS for s in SHAPES]
    words = dict(zip(phrases, encoder.encode_texts(phrases), strict=True))
    images: list[float] = []
    texts: list[float] = []
    for _ in range(50 * n):  # bounded: a tiny library may lack examples
        if len(images) == n:
            break
        case = _transfer_case(lib, rng)
        if case is None:
            continue
        i, shape, colour, target = case
        sides = [_examples(lib, c, shape) for c in (target, colour)]
        if min(map(len, sides)) < 3:
            continue
        pos, neg = (lib.vectors[rng.permutation(side)[:EXAMPLES_PER_SIDE]] for side in sides)
        images.append(_moved_precision(lib, i, direction_from_examples(pos, neg), shape, target))
        others = [s for s in SHAPES if s != shape]
        text_dir = direction_from_examples(
            np.stack([words[f"a {target} {s}"] for s in others]),
            np.stack([words[f"a {colour} {s}"] for s in others]),
        )
        texts.append(_moved_precision(lib, i, text_dir, shape, target))
    return {"images": _mean_or_nan(images), "texts": _mean_or_nan(texts)}


def _mean_or_nan(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _path_shares(lib: Library, a: int, b: int) -> np.ndarray:
    """Per slerp step: shares of the top 10 (a and b left out) like a, like b, mixed, other."""
    from latent.query.navigation import interpolate

    oa, ob = lib.scenes[a].objects[0], lib.scenes[b].objects[0]
    kinds = [(oa.shape, oa.color), (ob.shape, ob.color), (oa.shape, ob.color), (ob.shape, oa.color)]
    like = np.array([[_has(s, *k) for k in kinds] for s in lib.scenes])
    category = np.where(like[:, 0], 0, np.where(like[:, 1], 1, np.where(like[:, 2:].any(1), 2, 3)))
    out = np.zeros((PATH_STEPS, 4))
    for step, (_, point) in enumerate(interpolate(lib.vectors[a], lib.vectors[b], PATH_STEPS)):
        scores = lib.vectors @ point
        scores[[a, b]] = -np.inf
        top = np.argsort(-scores, kind="stable")[:10]
        out[step] = np.bincount(category[top], minlength=4) / len(top)
    return out


def interpolation_quality(lib: Library, n: int, rng: np.random.Generator) -> dict[str, object]:
    """Slerp between two single-object images that differ in shape and colour.

    Returns the share of pairs whose first step is topped by image A and last by B,
    and per step the mean share of the top 10 (A and B left out) with A's shape and
    colour, B's, a mix (one's shape in the other's colour) or neither.
    """
    endpoints, shares = [], []
    ids = _single_object_ids(lib, 10 * n, rng)
    for _ in range(50 * n):
        if len(shares) == n:
            break
        a, b = (int(x) for x in rng.choice(ids, 2, replace=False))
        oa, ob = lib.scenes[a].objects[0], lib.scenes[b].objects[0]
        if oa.shape == ob.shape or oa.color == ob.color:
            continue
        first = int(np.argmax(lib.vectors @ lib.vectors[a]))
        last = int(np.argmax(lib.vectors @ lib.vectors[b]))
        endpoints.append(first == a and last == b)
        shares.append(_path_shares(lib, a, b))
    steps = np.mean(shares, axis=0).tolist() if shares else []
    return {"endpoints": _mean_or_nan(endpoints), "steps": steps}


def text_latency_ms(encoder: EncoderLike, repeats: int = 50) -> float:
    """Median wall time of embedding one short text query."""
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        encoder.encode_texts([f"a small red circle in the top left corner {i}"])
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def run(model: str, directory: Path, count: int, seed: int, n: int) -> dict[str, object]:
    """Measures every figure; returns them keyed by name."""
    encoder = load_encoder(model)
    lib, rate = build_library(encoder, directory, count, seed)
    rng = np.random.default_rng(seed)
    return {
        "template": text_precision(encoder, lib, captions.TRAIN_VOCAB, n, rng),
        "held_out": text_precision(encoder, lib, captions.HELD_OUT_VOCAB, n, rng),
        "image": image_precision(lib, n, rng),
        "arithmetic": arithmetic_precision(encoder, lib, n, rng),
        "transfer": direction_transfer(encoder, lib, n, rng),
        "interpolation": interpolation_quality(lib, n, rng),
        "text_ms": text_latency_ms(encoder),
        "images_per_s": rate,
        "count": len(lib.scenes),
        "load": os.getloadavg()[0],  # other work slows the cost rows; say how much there was
    }


def _mean(levels: dict[str, float]) -> float:
    return float(np.mean([levels[name] for name in LEVELS]))


def table(r: dict) -> str:
    """Markdown table of the figures, with targets and pass/below marks."""

    def mark(value: float, key: str) -> str:
        return "meets" if value >= TARGETS[key] else "**below**"

    rows = ["| figure | value | target | |", "|---|---|---|---|"]
    for key, label in (
        ("template", "text→image P@10, template wording"),
        ("held_out", "text→image P@10, held-out phrasings"),
    ):
        for name in LEVELS:
            rows.append(f"| {label}: {name} | {r[key][name]:.3f} | | |")
        m = _mean(r[key])
        rows.append(f"| **{label}: mean** | **{m:.3f}** | ≥ {TARGETS[key]:.2f} | {mark(m, key)} |")
    rows.append(
        f"| image→image P@10 (same shape and colour) | {r['image']:.3f} | ≥ 0.90 | "
        f"{mark(r['image'], 'image')} |"
    )
    rows.append(
        f'| arithmetic image − "X" + "Y" P@10 | {r["arithmetic"]:.3f} | ≥ 0.80 | '
        f"{mark(r['arithmetic'], 'arithmetic')} |"
    )
    for key, label in (("images", "10 + 10 images"), ("texts", "7 + 7 texts")):
        rows.append(
            f"| direction transfer, examples {label}: X-coloured S + dir(Y − X) "
            f"finds Y-coloured S, P@10 | {r['transfer'][key]:.3f} | | |"
        )
    interp = r["interpolation"]
    rows.append(
        f"| interpolation image A → B: step 0 topped by A and step {PATH_STEPS - 1} by B "
        f"(share of pairs) | {interp['endpoints']:.3f} | | |"
    )
    rows.append(f"| text query embedding p50 | {r['text_ms']:.1f} ms | | |")
    rows.append(f"| images/s (decode + preprocess + vision tower) | {r['images_per_s']:.0f} | | |")
    return "\n".join(rows)


def path_table(r: dict) -> str:
    """Markdown table: how the top 10 change along the interpolation paths."""
    rows = ["| step | t | like A | like B | mixed | other |", "|---:|---:|---:|---:|---:|---:|"]
    for step, shares in enumerate(r["interpolation"]["steps"]):
        t = step / (PATH_STEPS - 1)
        rows.append(f"| {step} | {t:.2f} | " + " | ".join(f"{x:.2f}" for x in shares) + " |")
    return "\n".join(rows)


def section(r: dict, model: str, command: str) -> str:
    """The body of the "## Model quality" section of BENCHMARKS.md."""
    examples = "\n".join(
        f'- {k}: "{r[k][n + " example"]}"' for k in ("template", "held_out") for n in LEVELS
    )
    return (
        f"Model `{model}` on a fresh demo library of {r['count']} images (seed {BENCH_SEED}, "
        "never used in training); exact cosine search in numpy. P@10 counts the top "
        "min(10, #relevant) hits, so rare attribute combinations are not capped.\n\n"
        f"Machine: {common.machine()}; load average {r['load']:.1f} at the end of the run "
        f"(cost rows slow down under load); {common.utc_now()}.\n"
        f"Command: `{command}`\n\n{table(r)}\n\n"
        "Direction transfer: for an image of one X-coloured shape S and another colour Y, a "
        "direction is made from example sets that never show S (images: up to 10 single "
        'Y-coloured objects minus up to 10 X-coloured ones; texts: "a Y <shape>" minus '
        '"a X <shape>" over the 7 other shapes) and added to the image as a unit vector, '
        "as `asset:ID + dir:NAME` does; a hit counts when it shows a Y-coloured S.\n\n"
        f"Interpolation: {len(r['interpolation']['steps'])}-step slerp between two "
        "single-object images differing in shape and colour. Shares of the top 10 at each "
        "step (A and B themselves left out) that show A's shape and colour, B's, a mix "
        "(one's shape in the other's colour) or neither:\n\n"
        f"{path_table(r)}\n\nExample queries:\n\n{examples}\n"
    )


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    """Runs the benchmark from the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="builtin:demo")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=BENCH_SEED)
    parser.add_argument("--queries", type=int, default=100, help="queries per figure and level")
    parser.add_argument("--library", type=Path, help="reuse/generate the library here")
    parser.add_argument("--benchmarks", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.library or Path(tmp) / "library"
        r = run(args.model, directory, args.count, args.seed, args.queries)
    out(table(r))
    out("")
    out(path_table(r))
    if not args.no_write:
        command = common.command_line("bench/quality.py", argv)
        common.replace_section(args.benchmarks, "Model quality", section(r, args.model, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
