"""``make demo``: build the demo library, index it, serve it and show three example searches."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from assetsearch_client import SearchClient

from indexer.metadata import load_metadata
from indexer.pipeline import Indexer
from latent.catalog import Catalog
from latent.models.encoders import EncoderCache
from latent.settings import Settings
from service.server import AssetSearchServer

# Both are in the default library (400 images, seed 2026): it holds four small red diamonds
# on grass, but no small blue star on grass, which this example used to ask for.
EXAMPLES = ("a red circle", "a small red diamond on grass")


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


def _show(title: str, response, labels: dict[str, str]) -> None:
    print(f"\n== {title}")
    for rank, hit in enumerate(response.hits, 1):
        label = labels.get(hit.uri, "")
        print(f"  {rank}. {hit.score:.3f}  #{hit.asset_id:<5} {Path(hit.uri).name:<18} {label}")


def main(argv: list[str] | None = None) -> int:
    """Build, index and serve the demo library until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--library", type=Path, default=Path(".assetsearch-demo/library"))
    parser.add_argument("--count", type=int, default=400, help="images to generate (default 400)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    settings = Settings()
    settings.apply_threads()

    if not (args.library / "labels.jsonl").exists():
        from latent.demo.world import generate_library

        print(f"writing {args.count} demo images to {args.library} ...", flush=True)
        generate_library(args.library, count=args.count, seed=args.seed)
    catalog = Catalog(settings.resolved_database_url())
    encoders = EncoderCache(batch_size=settings.batch_size)
    print(f"indexing with model {settings.model} ...", flush=True)
    summary = Indexer(
        catalog,
        encoders.get,
        settings.collection,
        settings.model,
        batch_size=settings.batch_size,
        metadata=load_metadata(args.library / "labels.jsonl"),
    ).run([args.library])
    print(summary)

    server = AssetSearchServer(settings, catalog, encoders)
    port = server.start()
    address = f"{settings.host}:{port}"
    labels = _labels(args.library)
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
    print(
        f"\nassetsearch is serving {address}; try:\n"
        f'  .venv/bin/assetsearch search "a green heart" --server {address}'
    )
    print("Ctrl-C to stop.", flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
