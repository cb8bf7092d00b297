"""The demo: ``assetsearch demo-library``, and ``make demo`` (build, index, serve, search)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assetsearch_client import SearchClient

from cli.serve import stop_event
from latent.settings import Settings

if TYPE_CHECKING:
    from latent.catalog import Catalog
    from latent.models.encoders import EncoderCache

# Both are in the default library (400 images, seed 2026): it holds four small red diamonds
# on grass, but no small blue star on grass, which this example used to ask for.
EXAMPLES = ("a red circle", "a small red diamond on grass")


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the ``demo-library`` command."""
    p = commands.add_parser(
        "demo-library", help="write the procedural demo library with labels.jsonl"
    )
    p.add_argument("dir", help="output folder")
    p.add_argument("--count", type=int, default=500, help="number of images (default 500)")
    p.add_argument(
        "--seed", type=int, default=0, help="random seed; the same seed gives the same bytes"
    )
    p.add_argument("--videos", type=int, default=0, help="number of short videos (default 0)")
    p.set_defaults(func=demo_library)


def demo_library(args: argparse.Namespace) -> int:
    """Write the procedural demo library."""
    from latent.demo.world import generate_library

    written = generate_library(Path(args.dir), count=args.count, seed=args.seed, videos=args.videos)
    print(f"wrote {written} files to {args.dir}")
    return 0


def _labels(library: Path) -> dict[str, str]:
    """uri -> short description from the library's labels.jsonl (empty if absent)."""
    path = library / "labels.jsonl"
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        objects = ", ".join(
            f"{o['size']} {o['color']} {o['shape']} ({o['position']})" for o in row["objects"]
        )
        out[(library / row["file"]).resolve().as_uri()] = f"{objects} on {row['background']}"
    return out


def _show(title: str, response: Any, labels: dict[str, str]) -> None:
    print(f"\n== {title}")
    for rank, hit in enumerate(response.hits, 1):
        label = labels.get(hit.uri, "")
        print(f"  {rank}. {hit.score:.3f}  #{hit.asset_id:<5} {Path(hit.uri).name:<18} {label}")


def _index(settings: Settings, library: Path, catalog: Catalog, encoders: EncoderCache) -> None:
    """Index the demo library with its labels as metadata."""
    from indexer.metadata import load_metadata
    from indexer.pipeline import Indexer

    print(f"indexing with model {settings.model} ...", flush=True)
    summary = Indexer(
        catalog,
        encoders.get,
        settings.collection,
        settings.model,
        batch_size=settings.batch_size,
        max_pixels=settings.max_image_pixels,
        metadata=load_metadata(library / "labels.jsonl"),
        max_file_bytes=int(settings.max_file_bytes),
        exclude=[settings.data_dir],
    ).run([library])
    print(summary)


def _examples(address: str, labels: dict[str, str]) -> None:
    """Run the example searches against the demo server and print their hits."""
    with SearchClient(address) as client:
        for text in EXAMPLES:
            _show(
                f'assetsearch search "{text}" --top-k 5', client.search(text=text, top_k=5), labels
            )
        first = client.search(text=EXAMPLES[0], top_k=1).hits[0]
        _show(
            f"assetsearch search --like {first.asset_id} --top-k 5",
            client.search(asset_id=first.asset_id, top_k=5),
            labels,
        )


def main(argv: list[str] | None = None) -> int:
    """Build, index and serve the demo library until Ctrl-C."""
    from latent.catalog import Catalog
    from latent.demo.world import generate_library
    from latent.models.encoders import EncoderCache
    from service.server import AssetSearchServer

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--library", type=Path, default=Path(".assetsearch-demo/library"))
    parser.add_argument("--count", type=int, default=400, help="images to generate (default 400)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    settings = Settings()
    settings.apply_threads()
    if not (args.library / "labels.jsonl").exists():
        print(f"writing {args.count} demo images to {args.library} ...", flush=True)
        generate_library(args.library, count=args.count, seed=args.seed)
    catalog = Catalog(settings.resolved_database_url())
    encoders = EncoderCache(batch_size=settings.batch_size)
    _index(settings, args.library, catalog, encoders)
    server = AssetSearchServer(settings, catalog, encoders)
    address = f"{settings.host}:{server.start()}"
    _examples(address, _labels(args.library))
    print(
        f"\nassetsearch is serving {address}; try:\n"
        f'  .venv/bin/assetsearch search "a green heart" --server {address}'
    )
    print("Ctrl-C to stop.", flush=True)
    stop_event().wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
