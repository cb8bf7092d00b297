"""What the client commands print: hits, walks, usage errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any


def usage_error(message: str) -> int:
    """Print a one-line usage error.

    Returns:
        2, the exit status of a usage or input error.
    """
    print(f"error: {message}", file=sys.stderr)
    return 2


def rounded(x: float) -> float:
    """A score or cosine as printed in JSON: four decimals."""
    return round(float(x), 4)


def hit_dict(rank: int, hit: Any) -> dict[str, Any]:
    """One hit as a JSON object (a video hit names its best segment)."""
    out = {
        "rank": rank,
        "asset_id": hit.asset_id,
        "uri": hit.uri,
        "score": round(hit.score, 6),
        "media_type": hit.media_type,
        "width": hit.width,
        "height": hit.height,
    }
    if hit.HasField("segment_start"):
        out["segment_start"], out["segment_end"] = hit.segment_start, hit.segment_end
    return out


def print_steps(steps: Iterable[Any], as_json: bool) -> None:
    """Print a walk's result sets as they stream in, one per step."""
    for result in steps:
        if as_json:
            hits = [hit_dict(rank, h) for rank, h in enumerate(result.hits, 1)]
            step = {"step": result.step, "t": rounded(result.t), "hits": hits}
            print(json.dumps(step), flush=True)
            continue
        print(f"step {result.step} (t={result.t:.3f})")
        for rank, hit in enumerate(result.hits, 1):
            print(f"  {rank:>3}  {hit.score:7.4f}  #{hit.asset_id:<7} {hit.uri}")
