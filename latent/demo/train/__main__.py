"""Command line: python -m latent.demo.train --out latent/models/demo --seed 0."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

from latent.demo.train.train import PRECISIONS, TrainConfig, train


def main(argv: list[str] | None = None) -> int:
    """Parses arguments, trains, prints the summary.

    Args:
        argv: Arguments (defaults to sys.argv).

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m latent.demo.train", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("latent/models/demo"))
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            type=type(getattr(defaults, f.name)),
            default=getattr(defaults, f.name),
            choices=PRECISIONS if f.name == "precision" else None,
        )
    args = parser.parse_args(argv)
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    summary = train(cfg, args.out, log=lambda line: print(line, flush=True))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
