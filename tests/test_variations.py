"""Variations: assets a small, distinct move away from a seed (the maths, the RPC, the CLI)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import grpc
import numpy as np
import pytest
from assetsearch_client import AssetSearchError, NotFound, SearchClient
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cli.main import main as cli_main
from indexer.pipeline import Indexer
from latent.errors import DimensionMismatch, InvalidArgument
from latent.query.navigation import cosine_matrix, pick_variations

DIM = 8


def _at(cos: float, axis: int, d: int = DIM) -> np.ndarray:
    """A unit vector at cosine `cos` to e0, moved away from it along e_axis."""
    v = np.zeros(d)
    v[0], v[axis] = cos, np.sqrt(1.0 - cos**2)
    return v


# --- the maths ---------------------------------------------------------------------------


def test_only_the_band_qualifies_and_it_is_counted() -> None:
    seed = _at(1.0, 1)
    candidates = np.stack(
        [seed, _at(0.995, 1), _at(0.9, 1), _at(0.8, 2), _at(0.6, 3), -seed]
    )  # the seed, a near-duplicate, two in the band, two beyond it
    picks = pick_variations(seed, candidates, n=10, radius=0.25, min_distance=0.02)
    assert sorted(picks.indices) == [2, 3] and picks.in_band == 2


def test_diversity_prefers_new_directions_over_more_of_the_same() -> None:
    seed = _at(1.0, 1)
    same_way = [_at(np.cos(angle), 1) for angle in (0.16, 0.32, 0.48)]  # all along e1
    other_ways = [_at(0.8, 2), _at(0.8, 3)]  # farther, but along e2 and e3
    candidates = np.stack(same_way + other_ways)
    band = {"n": 3, "radius": 0.3, "min_distance": 0.01}
    assert pick_variations(seed, candidates, **band, diversity=0.0).indices == [0, 1, 2]
    assert pick_variations(seed, candidates, **band, diversity=0.5).indices == [0, 3, 4]


def test_near_duplicates_of_a_pick_are_skipped() -> None:
    seed = _at(1.0, 1)
    twin = _at(0.9, 2)
    candidates = np.stack([twin, twin, _at(0.899, 2) + 1e-3 * np.eye(DIM)[5], _at(0.85, 3)])
    picks = pick_variations(seed, candidates, n=4, radius=0.3, min_distance=0.02)
    assert picks.indices == [0, 3] and picks.in_band == 4


@settings(max_examples=60, deadline=None)
@given(
    seed=arrays(np.float64, DIM, elements=st.floats(-1, 1)).filter(
        lambda v: np.linalg.norm(v) > 1e-2
    ),
    noise=st.floats(0.05, 2.0),
    n=st.integers(1, 12),
    radius=st.floats(0.05, 2.0),
    diversity=st.floats(0.0, 1.0),
    data_seed=st.integers(0, 1000),
)
def test_picks_are_in_the_band_distinct_and_at_most_n(
    seed, noise, n, radius, diversity, data_seed
) -> None:
    rng = np.random.default_rng(data_seed)
    candidates = seed + noise * rng.normal(size=(40, DIM))
    candidates[:3] = candidates[3]  # some exact duplicates among the candidates
    min_distance = radius / 10
    picks = pick_variations(seed, candidates, n, radius, min_distance, diversity)
    assert len(picks.indices) <= min(n, picks.in_band)
    assert len(set(picks.indices)) == len(picks.indices)
    distance = 1.0 - cosine_matrix(candidates[picks.indices], seed)[:, 0]
    assert np.all(distance >= min_distance - 1e-5) and np.all(distance <= radius + 1e-5)
    among = cosine_matrix(candidates[picks.indices], candidates[picks.indices])
    np.fill_diagonal(among, -1.0)
    assert np.all(among < 1.0 - min_distance + 1e-5)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"n": 0}, "n must be"),
        ({"radius": 0.0}, "radius"),
        ({"radius": 2.5}, "radius"),
        ({"radius": float("nan")}, "radius"),
        ({"min_distance": 0.3}, "min_distance"),
        ({"min_distance": -0.1}, "min_distance"),
        ({"diversity": 1.5}, "diversity"),
    ],
)
def test_bad_arguments_are_invalid(kwargs, words) -> None:
    args = {"n": 3, "radius": 0.3, "min_distance": 0.02, "diversity": 0.3, **kwargs}
    with pytest.raises(InvalidArgument, match=words):
        pick_variations(_at(1.0, 1), np.eye(DIM), **args)


def test_a_seed_of_another_dimension_is_refused() -> None:
    with pytest.raises(DimensionMismatch):
        pick_variations(np.ones(3), np.eye(DIM), 3, 0.3)


# --- over the real server ------------------------------------------------------------------


@pytest.fixture
def indexed(server, encoder, library: Path) -> Path:
    seed = sorted(library.rglob("*.png"))[0]
    for i in range(3):  # exact copies of the seed under other names
        shutil.copy(seed, library / f"copy{i}.png")
    Indexer(server.catalog, lambda spec: encoder, "default", encoder.spec).run([library])
    server.indexes.sync()
    return library


def _asset_of(client: SearchClient, path: Path) -> int:
    return client.search(image=path.read_bytes(), top_k=1).hits[0].asset_id


def test_variations_leave_out_the_seed_and_its_copies(client: SearchClient, indexed: Path) -> None:
    seed_path = sorted(indexed.rglob("*.png"))[0]
    seed = _asset_of(client, seed_path)
    copies = {
        h.asset_id
        for h in client.search(image=seed_path.read_bytes(), top_k=10).hits
        if h.score > 0.9999
    }
    assert len(copies) == 4 and seed in copies  # the seed and its three copies
    response = client.variations(seed, n=6, radius=0.1, min_distance=0.001)
    scores = [h.score for h in response.hits]
    assert len(response.hits) == 6 and not copies & {h.asset_id for h in response.hits}
    assert scores == sorted(scores, reverse=True)
    assert all(1 - 0.1 - 1e-5 <= s <= 1 - 0.001 + 1e-5 for s in scores)
    assert response.radius == pytest.approx(0.1) and response.min_distance == pytest.approx(0.001)
    assert response.in_band >= 6 and response.index_size == 27
    by_expression = client.variations(f"asset:{seed}", n=6, radius=0.1, min_distance=0.001)
    assert [h.asset_id for h in by_expression.hits] == [h.asset_id for h in response.hits]


def test_a_query_seed_and_the_default_band(client: SearchClient, indexed: Path) -> None:
    image = sorted(indexed.rglob("*.jpg"))[0]
    response = client.variations([_image_term(image)], n=4)
    assert 0.05 <= response.radius <= 1.0 and response.min_distance == pytest.approx(
        min(0.02, response.radius / 2)
    )
    assert all(h.score <= 1 - response.min_distance + 1e-5 for h in response.hits)
    assert image.as_uri() not in {h.uri for h in response.hits}  # it is its own near-duplicate


def _image_term(path: Path):
    from assetsearch_client import terms

    return terms.Image(path.read_bytes())


def test_a_narrow_band_returns_fewer_and_says_so(client: SearchClient, indexed: Path) -> None:
    seed = _asset_of(client, sorted(indexed.rglob("*.jpg"))[0])
    response = client.variations(seed, n=8, radius=0.002, min_distance=0.001)
    assert len(response.hits) == response.in_band < 8


@pytest.mark.parametrize(
    ("kwargs", "code", "words"),
    [
        ({"radius": 0.0}, grpc.StatusCode.INVALID_ARGUMENT, "radius"),
        ({"radius": 3.0}, grpc.StatusCode.INVALID_ARGUMENT, "radius"),
        ({"radius": 0.1, "min_distance": 0.2}, grpc.StatusCode.INVALID_ARGUMENT, "min_distance"),
        ({"diversity": -0.5}, grpc.StatusCode.INVALID_ARGUMENT, "diversity"),
        ({"n": -1}, grpc.StatusCode.INVALID_ARGUMENT, "n must be"),
    ],
)
def test_bad_requests_are_invalid(client: SearchClient, indexed: Path, kwargs, code, words) -> None:
    with pytest.raises(AssetSearchError) as err:
        client.variations(1, **kwargs)
    assert err.value.status == code and words in str(err.value)


def test_unknown_seed_is_not_found(client: SearchClient, indexed: Path) -> None:
    with pytest.raises(NotFound):
        client.variations(999_999)


def test_cli_prints_json_lines(
    client: SearchClient, indexed: Path, server, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = _asset_of(client, sorted(indexed.rglob("*.png"))[0])
    address = f"127.0.0.1:{server.port}"
    argv = ["variations", str(seed), "-n", "3", "--radius", "0.1", "--min-distance", "0.001"]
    assert cli_main([*argv, "--server", address, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["rank"] for r in rows] == [1, 2, 3] and seed not in {r["asset_id"] for r in rows}
    assert {"asset_id", "uri", "score"} <= rows[0].keys()
    assert cli_main([*argv, "--server", address]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 3 and "in that band" in captured.err
    assert cli_main(["variations", str(seed), "--radius", "5", "--server", address]) == 1
    assert "INVALID_ARGUMENT" in capsys.readouterr().err
