"""Helpers shared by the indexing and query-latency benchmarks: images, timing, machine, report."""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEMO_WEIGHTS = ROOT / "latent" / "models" / "demo" / "open_clip_model.safetensors"
TINY_MODEL = f"local-dir:{ROOT / 'tests' / 'assets' / 'tiny-clip'}"
BENCHMARKS = ROOT / "BENCHMARKS.md"
MODEL_HELP = "model spec (default: builtin:demo if its weights exist, else the tiny test model)"
SHAPES = ("ellipse", "rectangle", "triangle", "line")

T = TypeVar("T")


def default_model() -> str:
    """``builtin:demo`` when its weights exist, else the tiny random-weight test model."""
    return "builtin:demo" if DEMO_WEIGHTS.is_file() else TINY_MODEL


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    r, g, b = rng.integers(0, 256, size=3)
    return int(r), int(g), int(b)


def render_image(rng: np.random.Generator) -> Image.Image:
    """One RGB image, 128-512 px a side, of 1-5 random shapes on a random background."""
    w, h = (int(v) for v in rng.integers(128, 513, size=2))
    img = Image.new("RGB", (w, h), _colour(rng))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 6))):
        x0, x1 = sorted(int(v) for v in rng.integers(0, w, size=2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, h, size=2))
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        if shape == "ellipse":
            draw.ellipse((x0, y0, x1, y1), fill=_colour(rng))
        elif shape == "rectangle":
            draw.rectangle((x0, y0, x1, y1), fill=_colour(rng))
        elif shape == "triangle":
            draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=_colour(rng))
        else:
            draw.line((x0, y0, x1, y1), fill=_colour(rng), width=int(rng.integers(2, 12)))
    return img


def generate_images(out_dir: Path, count: int, seed: int) -> list[Path]:
    """Write ``count`` deterministic images (about half PNG, half JPEG) into ``out_dir``.

    Returns:
        The file paths, in generation order.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        img = render_image(rng)
        if rng.random() < 0.5:
            path = out_dir / f"img_{i:06d}.png"
            img.save(path, format="PNG")
        else:
            path = out_dir / f"img_{i:06d}.jpg"
            img.save(path, format="JPEG", quality=90)
        paths.append(path)
    return paths


def write_random_arch(name: str, out_dir: Path, seed: int = 0) -> str:
    """Write open_clip architecture ``name`` with seeded random weights as a local model.

    Real weights cannot be downloaded here; a random model of the real size costs the
    same to run. The files go to ``out_dir`` (a temp dir of the run, never committed).

    Args:
        name: An open_clip architecture, e.g. ``ViT-B-32``.
        out_dir: Where ``open_clip_config.json`` and ``open_clip_model.safetensors`` go.
        seed: The ``torch.manual_seed`` of the weights.

    Returns:
        The model spec, ``local-dir:OUT_DIR``.
    """
    import json

    import open_clip
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=None)
    config = open_clip.get_model_config(name)
    if config is None:
        raise SystemExit(f"open_clip knows no architecture {name!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": config, "preprocess_cfg": {}}, indent=2)
    )
    weights = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(out_dir / "open_clip_model.safetensors"))
    return f"local-dir:{out_dir}"


def set_threads(threads: int) -> str:
    """Apply a torch/FAISS thread count as ``Settings.threads`` means it (0 keeps the default).

    Returns:
        A note for the report, e.g. "torch threads 1 (default 2)".
    """
    import faiss
    import torch

    default = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
        faiss.omp_set_num_threads(threads)
    return f"torch threads {torch.get_num_threads()} (default {default})"


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """The ``--threads`` option both benchmarks share."""
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch/FAISS threads, as ASSETSEARCH_THREADS (default 0: torch's own)",
    )


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Call ``fn``; returns its result and the wall time in seconds."""
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


@dataclass(frozen=True)
class Cost:
    """Wall-clock and process CPU seconds (all threads) of one call."""

    wall: float
    cpu: float


def costed(fn: Callable[[], T]) -> tuple[T, Cost]:
    """Call ``fn``; returns its result and its wall and CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, Cost(time.perf_counter() - wall, time.process_time() - cpu)


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of the samples, linearly interpolated."""
    return float(np.percentile(np.asarray(samples, dtype=np.float64), q))


def median(samples: Sequence[float]) -> float:
    """The median of the samples."""
    return float(statistics.median(samples))


def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo (or what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def ram_gib() -> float:
    """Total memory in GiB, from /proc/meminfo (0 when unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1024 * 1024)
    except OSError:
        pass
    return 0.0


def machine() -> str:
    """One line: architecture, CPU model, usable cores and RAM."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"`{platform.machine()}`, {cpu_model()}, {cores} cores (nproc), {ram_gib():.0f} GiB RAM"


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """The command that reproduces this run, for the report."""
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join([".venv/bin/python", script, shlex.join(args)]).strip()


def utc_now() -> str:
    """The current time, to the minute, in UTC."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def replace_section(path: Path, title: str, body: str) -> None:
    """Replace (or append) the ``## title`` section of a markdown file, keeping all others.

    The file is rewritten atomically (temp file + rename) so a concurrent reader
    never sees half a file.
    """
    heading = f"## {title}\n"
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    section = heading + "\n" + body.strip("\n") + "\n"
    start = old.find(heading) if old.startswith(heading) else old.find("\n" + heading)
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + section
    else:
        start += 0 if old.startswith(heading) else 1
        end = old.find("\n## ", start + len(heading))
        new = old[:start] + section + ("" if end < 0 else "\n" + old[end + 1 :])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, path)
