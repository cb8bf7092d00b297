"""The index policy: type by size and memory budget, overrides, and when to rebuild."""

from __future__ import annotations

import pytest

from latent.errors import InvalidArgument
from latent.index.policy import (
    IndexPolicy,
    IndexSpec,
    bytes_per_vector,
    complete,
    default_nlist,
    estimate_bytes,
)
from latent.settings import Settings

DIM = 512


def test_small_collections_are_exact_and_large_ones_ivf() -> None:
    policy = IndexPolicy()
    assert policy.choose(49_999, DIM).kind == "flat"
    large = policy.choose(1_000_000, DIM)
    assert large.kind == "ivf-flat"
    assert large.nlist == default_nlist(1_000_000) == 2048  # 4·sqrt(n), capped
    assert policy.choose(100_000, DIM).nlist == round(4 * 100_000**0.5)


def test_a_memory_budget_picks_compressed_codes() -> None:
    n = 1_000_000
    flat_bytes = estimate_bytes(IndexSpec("ivf-flat", nlist=2048), n, DIM)
    roomy = IndexPolicy(memory_budget=flat_bytes + 1)
    assert roomy.choose(n, DIM).kind == "ivf-flat"
    assert IndexPolicy(memory_budget=flat_bytes // 2).choose(n, DIM).kind == "ivf-sq8"
    tight = IndexPolicy(memory_budget=310 * n).choose(n, DIM)
    assert tight.kind == "ivf-pq" and tight.pq_m == 256  # the largest PQ that fits
    assert estimate_bytes(tight, n, DIM) <= 310 * n
    hopeless = IndexPolicy(memory_budget=1).choose(n, DIM)
    assert hopeless.kind == "ivf-pq" and hopeless.pq_m == DIM // 32  # the smallest there is


def test_bytes_per_vector_per_type() -> None:
    per = {k: bytes_per_vector(IndexSpec(k), DIM) for k in ("flat", "ivf-sq8", "ivf-pq", "hnsw")}
    assert per["flat"] == 4 * DIM + 40
    assert per["ivf-sq8"] == DIM + 40
    assert per["ivf-pq"] == DIM // 4 + 40
    assert per["hnsw"] > per["flat"] + 2 * 32 * 4 - 1


def test_overrides_win_and_are_completed() -> None:
    policy = IndexPolicy(override=IndexSpec("ivf-sq8"))
    assert policy.choose(10_000, DIM).kind == "ivf-sq8"  # below the flat threshold too
    own = IndexSpec("hnsw", ef_search=40)
    chosen = policy.choose(10_000, DIM, own)
    assert (chosen.kind, chosen.m, chosen.ef_search) == ("hnsw", 32, 40)
    assert policy.choose(500, DIM).kind == "flat"  # too few vectors to train lists yet
    assert complete(IndexSpec("ivf-flat", nlist=4096), 39_000, DIM).nlist == 1000


def test_bad_overrides_are_refused_with_a_reason() -> None:
    with pytest.raises(InvalidArgument, match="unknown index type"):
        IndexSpec("annoy")
    with pytest.raises(InvalidArgument, match="unknown index option"):
        IndexSpec.from_dict({"kind": "hnsw", "efsearch": 3})
    with pytest.raises(InvalidArgument, match="integers"):
        IndexSpec.from_dict({"kind": "hnsw", "m": "many"})
    with pytest.raises(InvalidArgument, match="divide"):
        complete(IndexSpec("ivf-pq", pq_m=7), 10_000, DIM)
    spec = IndexSpec.from_dict({"kind": "ivf-pq", "pq_m": "64", "nprobe": 8})
    assert spec.describe() == "ivf-pq(nprobe=8, pq_m=64)"
    assert IndexSpec.from_dict(spec.to_dict()) == spec


def test_rebuild_reasons() -> None:
    policy = IndexPolicy()
    flat = complete(IndexSpec("flat"), 10_000, DIM)
    assert policy.rebuild_reason(flat, 20_000, DIM) is None
    assert "ivf-flat" in (policy.rebuild_reason(flat, 60_000, DIM) or "")
    ivf = policy.choose(60_000, DIM)
    assert policy.rebuild_reason(ivf, 100_000, DIM) is None
    assert "grew" in (policy.rebuild_reason(ivf, 130_000, DIM) or "")
    # Hysteresis: shrinking a little below the threshold keeps the trained index.
    assert policy.rebuild_reason(ivf, 40_000, DIM) is None
    assert policy.rebuild_reason(ivf, 20_000, DIM) is not None
    # An override the index no longer matches asks for a rebuild; a matching one does not.
    assert "override" in (
        policy.rebuild_reason(ivf, 60_000, DIM, IndexSpec("ivf-flat", nlist=64)) or ""
    )
    assert policy.rebuild_reason(ivf, 60_000, DIM, IndexSpec("ivf-flat")) is None
    assert "ivf-sq8" in (policy.rebuild_reason(ivf, 60_000, DIM, IndexSpec("ivf-sq8")) or "")


def test_settings_build_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSETSEARCH_INDEX_TYPE", "ivf-sq8")
    monkeypatch.setenv("ASSETSEARCH_INDEX_MEMORY_BUDGET", "2GiB")
    monkeypatch.setenv("ASSETSEARCH_INDEX_FLAT_THRESHOLD", "1000")
    policy = Settings().index_policy()
    assert policy.memory_budget == 2 * 1024**3
    assert policy.flat_threshold == 1000
    assert policy.override == IndexSpec("ivf-sq8")
    monkeypatch.setenv("ASSETSEARCH_INDEX_TYPE", "lsh")
    with pytest.raises(ValueError, match="unknown index type"):
        Settings()
