"""Indexing throughput: a full ``Indexer.run`` against the encoder alone on the same images.

The figure is the ratio of the two rates (indexer / encoder): near 1.0 means scanning,
hashing, decoding and committing add little to the model's own cost. Each repeat times
the encoder and a fresh-catalog indexing run back to back, alternating which goes first,
so a neighbour's load on the machine hits both; medians over the repeats are reported.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402 - bench/ is a folder of scripts, not a package

from indexer.pipeline import Indexer, Summary  # noqa: E402
from latent.catalog import Catalog  # noqa: E402
from latent.media.images import decode_image_file  # noqa: E402
from latent.models.encoders import Encoder, load_encoder  # noqa: E402

SECTION = "Indexing"
COLLECTION = "bench"
MAX_PIXELS = 64_000_000


@dataclass(frozen=True)
class Repeat:
    """One side-by-side measurement: encoder alone, full run, unchanged re-run."""

    encoder: common.Cost
    indexer: common.Cost
    rerun_seconds: float

    @property
    def ratio(self) -> float:
        """Indexer images/s over encoder images/s, by wall clock (the figure)."""
        return self.encoder.wall / self.indexer.wall

    @property
    def cpu_ratio(self) -> float:
        """The same by process CPU time: how much work the pipeline adds, whatever the load."""
        return self.encoder.cpu / self.indexer.cpu


@dataclass(frozen=True)
class Result:
    """Everything the table reports."""

    model: str
    dim: int
    count: int
    batch_size: int
    load_seconds: float
    decode_rate: float
    repeats: list[Repeat]


def decode_all(paths: list[Path]) -> tuple[list[Image.Image], float]:
    """Read and decode every file on this thread, as the indexer's workers do.

    Returns:
        The RGB images and the decode rate in images/s.
    """
    decoded, seconds = common.timed(lambda: [decode_image_file(p, MAX_PIXELS).image for p in paths])
    return decoded, len(paths) / seconds


def index_run(
    catalog: Catalog, factory: Callable[[str], Encoder], model: str, library: Path, batch_size: int
) -> tuple[Summary, common.Cost]:
    """One ``Indexer.run`` over the library; returns its summary and cost."""
    indexer = Indexer(catalog, factory, COLLECTION, model, batch_size=batch_size)
    return common.costed(lambda: indexer.run([library]))


def full_and_rerun(
    encoder: Encoder, library: Path, url: str, batch_size: int, count: int
) -> tuple[common.Cost, float]:
    """A full run on a fresh catalog, then a re-run that must encode nothing.

    Returns:
        The full run's cost and the re-run's seconds.
    """
    catalog = Catalog(url)  # created (and migrated) outside the timed part
    try:
        factory = lambda _spec: encoder  # noqa: E731 - the model is loaded once, outside timing
        first, cost = index_run(catalog, factory, encoder.spec, library, batch_size)
        if first.indexed != count or first.failed:
            raise RuntimeError(f"first run did not index every image: {first}")
        second, _ = index_run(catalog, factory, encoder.spec, library, batch_size)
        if second.indexed != 0 or second.unchanged != count:
            raise RuntimeError(f"second run over an unchanged library encoded files: {second}")
    finally:
        catalog.close()
    return cost, second.seconds


def one_repeat(
    encoder: Encoder,
    images: list[Image.Image],
    library: Path,
    url: str,
    batch_size: int,
    encoder_first: bool,
) -> Repeat:
    """Encoder alone and a full indexing run back to back, in the order given."""

    def encode() -> common.Cost:
        return common.costed(lambda: encoder.encode_images(images))[1]

    if encoder_first:
        enc = encode()
        idx, rerun = full_and_rerun(encoder, library, url, batch_size, len(images))
    else:
        idx, rerun = full_and_rerun(encoder, library, url, batch_size, len(images))
        enc = encode()
    return Repeat(enc, idx, rerun)


def measure(model: str, count: int, batch_size: int, repeats: int, seed: int) -> Result:
    """Generate the library, load the model and run the repeats (alternating the order)."""
    with tempfile.TemporaryDirectory(prefix="bench-indexing-") as tmp:
        library = Path(tmp) / "library"
        paths = common.generate_images(library, count, seed)
        encoder, load_seconds = common.timed(lambda: load_encoder(model, batch_size=batch_size))
        images, decode_rate = decode_all(paths)
        encoder.encode_images(images[:batch_size])  # warm-up: first-call allocations
        runs = [
            one_repeat(
                encoder,
                images,
                library,
                f"sqlite:///{tmp}/catalog-{i}.sqlite3",
                batch_size,
                encoder_first=i % 2 == 0,
            )
            for i in range(repeats)
        ]
    return Result(encoder.spec, encoder.dim, count, batch_size, load_seconds, decode_rate, runs)


def table(r: Result) -> str:
    """The markdown table of the figures (medians over the repeats)."""
    enc = common.median([r.count / x.encoder.wall for x in r.repeats])
    idx = common.median([r.count / x.indexer.wall for x in r.repeats])
    ratio = common.median([x.ratio for x in r.repeats])
    cpu_ratio = common.median([x.cpu_ratio for x in r.repeats])
    each = ", ".join(f"{x.ratio:.2f}" for x in r.repeats)
    enc_cpu = common.median([x.encoder.cpu / r.count * 1000 for x in r.repeats])
    idx_cpu = common.median([x.indexer.cpu / r.count * 1000 for x in r.repeats])
    rerun = common.median([x.rerun_seconds for x in r.repeats])
    return "\n".join(
        [
            "| figure | value |",
            "|---|---|",
            "| encoder alone: `encode_images` on decoded images, in-process "
            f"| {enc:.1f} images/s |",
            f"| `Indexer.run`, fresh SQLite catalog (scan, read, hash, decode, encode, commit) "
            f"| {idx:.1f} images/s |",
            f"| **ratio indexer / encoder (wall clock)** | **{ratio:.2f}** (per repeat: {each}) |",
            f"| ratio by process CPU time (encoder CPU ÷ indexer CPU per image) | {cpu_ratio:.2f} "
            f"({enc_cpu:.1f} vs {idx_cpu:.1f} ms CPU per image) |",
            f"| second run, library unchanged (indexed 0, unchanged {r.count}) | {rerun:.2f} s |",
            f"| decode alone: read + decode on one thread | {r.decode_rate:.1f} images/s |",
            f"| model load (not in the rates above) | {r.load_seconds:.1f} s |",
        ]
    )


def section(r: Result, command: str, threads: str) -> str:
    """The body of the "## Indexing" section of BENCHMARKS.md."""
    return (
        f"Model `{r.model}` ({r.dim}-d), N = {r.count} generated images (PNG and JPEG, "
        f"128–512 px a side), batch size {r.batch_size}, {threads}, {len(r.repeats)} repeats; "
        "medians. "
        "Each repeat times the encoder alone and a full `Indexer.run` on a fresh SQLite "
        "catalog back to back (alternating which goes first), so load from other processes "
        "hits both. The CPU-time ratio is the work per image, less sensitive to load (with "
        "more than one torch thread it includes OpenMP spin-waiting); on a machine with idle "
        "cores the decode threads overlap the encoder and the wall-clock ratio rises above "
        "it.\n\n"
        f"Machine: {common.machine()}; {common.utc_now()}.\n"
        f"Command: `{command}`\n\n{table(r)}\n"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--count", type=int, default=300, help="images to generate (default %(default)s)"
    )
    parser.add_argument("--model", default=None, help=common.MODEL_HELP)
    parser.add_argument(
        "--batch-size", type=int, default=32, help="encoder batch size (default %(default)s)"
    )
    parser.add_argument(
        "--repeats", type=int, default=7, help="side-by-side repeats (default %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=1124, help="image generation seed (default %(default)s)"
    )
    common.add_threads_option(parser)
    parser.add_argument(
        "--write", action="store_true", help=f'replace the "## {SECTION}" section of BENCHMARKS.md'
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print (and optionally record) the table."""
    args = parse_args(argv)
    model = args.model or common.default_model()
    threads = common.set_threads(args.threads)
    print(
        f"model: {model}; images: {args.count}; batch size: {args.batch_size}; {threads}",
        flush=True,
    )
    result = measure(model, args.count, args.batch_size, max(1, args.repeats), args.seed)
    print(table(result))
    if args.write:
        command = common.command_line("bench/indexing.py", argv)
        common.replace_section(common.BENCHMARKS, SECTION, section(result, command, threads))
        print(f"wrote section '## {SECTION}' of {common.BENCHMARKS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
