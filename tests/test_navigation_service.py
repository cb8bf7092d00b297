"""Navigation over the real server: moves, interpolation, traversal, directions, explanations."""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
import numpy as np
import pytest
from assetsearch_client import AssetSearchError, SearchClient, terms

from indexer.pipeline import Indexer


@pytest.fixture
def indexed(server, encoder, library: Path) -> Path:
    Indexer(server.catalog, lambda spec: encoder, "default", encoder.spec).run([library])
    server.indexes.sync()
    return library


def _image(path: Path) -> list[terms.Term]:
    return [terms.Image(path.read_bytes())]


def _ids(client: SearchClient, n: int = 24) -> list[int]:
    return [h.asset_id for h in client.search(text="anything", top_k=n).hits]


def test_interpolation_starts_at_source_and_ends_at_target(
    client: SearchClient, indexed: Path
) -> None:
    a, b = sorted(indexed.rglob("*.png"))[:2]
    for method in ("slerp", "lerp"):
        steps = list(client.interpolate(_image(a), _image(b), steps=6, method=method, top_k=3))
        assert [s.step for s in steps] == list(range(6))
        assert steps[0].t == 0.0 and steps[-1].t == pytest.approx(1.0)
        assert steps[0].hits[0].uri == a.as_uri()
        assert steps[-1].hits[0].uri == b.as_uri()


def test_interpolation_dedupe_shows_each_asset_once(client: SearchClient, indexed: Path) -> None:
    ids = _ids(client)
    steps = list(
        client.interpolate(f"asset:{ids[0]}", f"asset:{ids[-1]}", steps=5, top_k=3, dedupe=True)
    )
    seen = [h.asset_id for s in steps for h in s.hits]
    assert len(seen) == len(set(seen)) == 15


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [({"steps": 1}, "steps"), ({"steps": 101}, "steps"), ({"method": "cubic"}, "method")],
)
def test_bad_interpolations_are_invalid(client: SearchClient, indexed: Path, kwargs, words) -> None:
    ids = _ids(client, 2)
    with pytest.raises(AssetSearchError) as err:
        list(client.interpolate(f"asset:{ids[0]}", f"asset:{ids[1]}", **kwargs))
    assert err.value.status == grpc.StatusCode.INVALID_ARGUMENT and words in str(err.value)


def test_direction_lifecycle_and_entanglement(client: SearchClient, indexed: Path) -> None:
    ids = _ids(client)
    made = client.create_direction(
        "warm",
        positive=[terms.Asset(i) for i in ids[:4]],
        negative=[terms.Text("a cold blue picture")],
    )
    assert made.name == "warm" and made.norm > 0 and made.positive[0] == f"asset:{ids[0]}"
    other = client.create_direction(
        "bright",
        positive=[terms.Asset(ids[5])],
        negative=[terms.Asset(ids[9])],
        orthogonal_to=["warm"],
    )
    assert abs(other.cosines["warm"]) < 1e-4  # made orthogonal to "warm"
    listed = {d.name: d for d in client.list_directions()}
    assert set(listed) == {"warm", "bright"} and listed["warm"].cosines["bright"] == pytest.approx(
        other.cosines["warm"], abs=1e-6
    )
    with pytest.raises(AssetSearchError) as err:
        client.create_direction("warm", positive=[terms.Text("x")])
    assert err.value.status == grpc.StatusCode.ALREADY_EXISTS
    hits = client.search(expression=f"asset:{ids[0]} + 0.5*dir:warm", top_k=3).hits
    assert len(hits) == 3
    client.delete_direction("bright")
    with pytest.raises(AssetSearchError) as err:
        client.get_direction("bright")
    assert err.value.status == grpc.StatusCode.NOT_FOUND
    with pytest.raises(AssetSearchError) as err:
        client.search(expression="dir:bright")
    assert err.value.status == grpc.StatusCode.NOT_FOUND


def test_bad_direction_requests(client: SearchClient, indexed: Path) -> None:
    for name, kwargs, code in [
        ("has space", {"positive": [terms.Text("x")]}, grpc.StatusCode.INVALID_ARGUMENT),
        ("empty", {}, grpc.StatusCode.INVALID_ARGUMENT),
        (
            "same",
            {"positive": [terms.Text("x")], "negative": [terms.Text("x")]},
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            "ortho",
            {"positive": [terms.Text("x")], "orthogonal_to": ["nope"]},
            grpc.StatusCode.NOT_FOUND,
        ),
    ]:
        with pytest.raises(AssetSearchError) as err:
            client.create_direction(name, **kwargs)
        assert err.value.status == code, name


def test_traverse_starts_at_the_origin(client: SearchClient, indexed: Path) -> None:
    ids = _ids(client)
    client.create_direction("d", positive=[terms.Asset(ids[-1])], negative=[terms.Asset(ids[0])])
    for kwargs in ({"named": "d"}, {"texts": ("day", "night")}, {"principal_component": 0}):
        steps = list(client.traverse(f"asset:{ids[0]}", steps=4, step=0.5, top_k=2, **kwargs))
        assert len(steps) == 4 and [s.t for s in steps] == pytest.approx([0, 0.5, 1.0, 1.5])
        assert steps[0].hits[0].asset_id == ids[0]
    far = list(client.traverse(f"asset:{ids[0]}", named="d", steps=2, step=50.0, top_k=1))
    assert far[-1].hits[0].asset_id == ids[-1]  # far along ids[-1] - ids[0]: ids[-1] is nearest


def test_explain_reports_term_cosines_and_density(
    client: SearchClient, indexed: Path, encoder
) -> None:
    ids = _ids(client)
    response = client.search(expression=f'asset:{ids[0]} - 0.5*"red"', top_k=5, explain=True)
    explanation = response.explanation
    assert list(explanation.terms) == [f"asset:{ids[0]}", '-0.5*"red"']
    assert len(explanation.query_vector.values) == encoder.dim
    for hit in response.hits:
        assert len(hit.term_cosines) == 2
    single = client.search(expression=f"asset:{ids[0]}", top_k=5, explain=True).hits
    assert single[0].asset_id == ids[0] and single[0].term_cosines[0] == pytest.approx(
        1.0, abs=1e-3
    )
    for hit in single:  # with one term, the term cosine is the score
        assert hit.term_cosines[0] == pytest.approx(hit.score, abs=1e-5)
    assert explanation.density.typical_similarity > 0 and explanation.density.knn_similarity > 0


def test_snap_moves_a_query_from_a_hole(client: SearchClient, indexed: Path, encoder) -> None:
    stored = client.search(text="anything", top_k=24)
    # the direction least like every asset: the negated mean lands far from the data
    vectors = np.stack(
        [
            np.asarray(
                client.search(
                    asset_id=h.asset_id, top_k=1, explain=True
                ).explanation.query_vector.values
            )
            for h in stored.hits[:10]
        ]
    )
    hole = -vectors.mean(axis=0)
    plain = client.search(vector=hole, top_k=3, explain=True)
    assert plain.explanation.density.is_hole
    snapped = client.search(vector=hole, top_k=3, explain=True, snap=True)
    assert snapped.explanation.density.snapped
    assert snapped.hits[0].score > plain.hits[0].score


def test_diversity_and_dedup_shape_results(
    client: SearchClient, indexed: Path, server, encoder
) -> None:
    source = sorted(indexed.rglob("*.png"))[0]
    for i in range(3):  # exact copies under other names
        shutil.copy(source, indexed / f"copy{i}.png")
    Indexer(server.catalog, lambda spec: encoder, "default", encoder.spec).run([indexed])
    server.indexes.sync()
    query = source.read_bytes()
    plain = client.search(image=query, top_k=6).hits
    assert sum(h.score > 0.999 for h in plain) == 4
    collapsed = client.search(image=query, top_k=6, dedup_threshold=0.999).hits
    assert sum(h.score > 0.999 for h in collapsed) == 1 and len(collapsed) == 6
    diverse = client.search(image=query, top_k=6, diversity=0.9).hits
    assert sum(h.score > 0.999 for h in diverse) < 4
    same = client.search(image=query, top_k=6, diversity=0.0).hits
    assert [h.asset_id for h in same] == [h.asset_id for h in plain]
    with pytest.raises(AssetSearchError) as err:
        client.search(image=query, diversity=1.5)
    assert err.value.status == grpc.StatusCode.INVALID_ARGUMENT


def test_project_maps_every_asset_and_the_path(
    client: SearchClient, indexed: Path, server, encoder
) -> None:
    import json

    from indexer.metadata import load_metadata

    sidecar = indexed / "labels.jsonl"
    files = sorted(p for p in indexed.rglob("*.*") if p.suffix != ".jsonl")
    sidecar.write_text(
        "".join(
            json.dumps(
                {
                    "file": str(f.relative_to(indexed)),
                    "objects": [{"color": "red" if i % 2 else "blue"}],
                }
            )
            + "\n"
            for i, f in enumerate(files)
        )
    )
    Indexer(
        server.catalog, lambda s: encoder, "default", encoder.spec, metadata=load_metadata(sidecar)
    ).run([indexed])
    ids = _ids(client)
    response = client.project(
        color_by="objects.0.color", path=(f"asset:{ids[0]}", f"asset:{ids[1]}"), path_steps=4
    )
    assert response.method == "pca" and response.total == 24 and len(response.points) == 24
    assert {p.color for p in response.points} == {"red", "blue"}
    where = {p.asset_id: (p.x, p.y) for p in response.points}
    assert [p.step for p in response.path] == [0, 1, 2, 3]
    assert (response.path[0].x, response.path[0].y) == pytest.approx(where[ids[0]], abs=1e-3)
    assert (response.path[-1].x, response.path[-1].y) == pytest.approx(where[ids[1]], abs=1e-3)
    assert (
        response.path[0].nearest_asset_id == ids[0] and response.path[-1].nearest_asset_id == ids[1]
    )
    sample = client.project(max_points=10)
    assert len(sample.points) == 10 and sample.total == 24
    for kwargs, code in [
        ({"max_points": 1}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"method": "tsne"}, grpc.StatusCode.INVALID_ARGUMENT),
    ]:
        with pytest.raises(AssetSearchError) as err:
            client.project(**kwargs)
        assert err.value.status == code
