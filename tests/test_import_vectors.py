"""Importing vectors computed elsewhere: catalog, files, CLI and RPC; bad input writes nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import grpc
import numpy as np
import pytest
from assetsearch_client import AssetSearchError, SearchClient

from indexer.vector_files import import_files
from latent.catalog import Catalog, import_collection
from latent.catalog.external import EXTERNAL_MODEL
from latent.errors import DimensionMismatch, FailedPrecondition, InvalidArgument
from tests.test_cli import cli


def _rows(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def _state(catalog: Catalog, name: str) -> tuple:
    """Everything a rejected import must leave unchanged."""
    col = catalog.collection(name)
    return catalog.counts(col.id), catalog.head_seq(col.id)


# -- the catalog's bulk path ----------------------------------------------------------------


def test_import_then_reimport_replaces_vectors_and_logs_it(catalog: Catalog) -> None:
    col = import_collection(catalog, "ext", "", 8)
    assert (col.model_spec, col.dim) == (EXTERNAL_MODEL, 8)
    first = _rows(5)
    counts = catalog.import_vectors(col, list("abcde"), first, [{"k": i} for i in range(5)])
    assert (counts.added, counts.replaced) == (5, 0)
    batch = catalog.changes_since(col, 0)
    assert len(batch.added_ids) == 5 and len(batch.removed) == 0
    expected = first / np.linalg.norm(first, axis=1, keepdims=True)
    order = np.argsort(batch.added_ids)
    np.testing.assert_allclose(batch.added_vectors[order], expected, atol=2e-3)

    again = catalog.import_vectors(col, ["b", "f"], _rows(2, seed=1), [None, {"new": True}])
    assert (again.added, again.replaced) == (1, 1)
    change = catalog.changes_since(col, batch.last_seq)
    assert len(change.removed) == 1 and len(change.added_ids) == 2
    assert catalog.counts(col.id)["indexed"] == 6
    by_uri = {a.uri: a for a in catalog.assets(list(range(1, 20))).values()}
    assert by_uri["vector:b"].metadata == {"k": 1}  # None keeps the old metadata
    assert by_uri["vector:f"].metadata == {"new": True}
    assert by_uri["vector:a"].media_type == "vector"


@pytest.mark.parametrize(
    ("ids", "rows", "error", "words"),
    [
        (["a", "b"], _rows(2, dim=7), DimensionMismatch, "7-d"),
        (["a", "a"], _rows(2), InvalidArgument, "appears twice (rows 0 and 1)"),
        (["a"], _rows(2), InvalidArgument, "1 ids for 2 vectors"),
        ([], _rows(0), InvalidArgument, "no vectors"),
        (["a", "b\n"], _rows(2), InvalidArgument, "control character"),
        (["a", ""], _rows(2), InvalidArgument, "1 to 512 characters"),
        (["a", "b"], np.array([[1.0] * 8, [np.nan] * 8], np.float32), InvalidArgument, "row 1"),
        (["a", "b"], np.array([[np.inf] * 8, [1.0] * 8], np.float32), InvalidArgument, "row 0"),
        (["a", "b"], np.array([[1.0] * 8, [0.0] * 8], np.float32), InvalidArgument, "zero"),
        (["a", "b"], np.array([[1e39] * 8, [1.0] * 8]), InvalidArgument, "infinite"),
    ],
)
def test_a_rejected_batch_writes_nothing(
    catalog: Catalog, ids: list[str], rows: np.ndarray, error: type, words: str
) -> None:
    col = import_collection(catalog, "ext", "", 8)
    catalog.import_vectors(col, ["a", "keep"], _rows(2, seed=9))
    before = _state(catalog, "ext")
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        catalog.import_vectors(col, ids, rows)
    assert _state(catalog, "ext") == before


def test_the_collection_keeps_its_model_and_dimension(catalog: Catalog) -> None:
    import_collection(catalog, "ext", "my-pipeline:v3", 8)
    assert import_collection(catalog, "ext", "", 8).model_spec == "my-pipeline:v3"
    with pytest.raises(FailedPrecondition, match="one model per collection"):
        import_collection(catalog, "ext", "other:model", 8)
    with pytest.raises(DimensionMismatch, match="collection 'ext'"):
        import_collection(catalog, "ext", "", 16)


# -- files ------------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    vectors, ids = tmp_path / "v.npy", tmp_path / "ids.txt"
    np.save(vectors, _rows(50, dim=8))
    ids.write_text("".join(f"item-{i}\n" for i in range(50)))
    return vectors, ids


def test_files_import_in_chunks_with_metadata(
    catalog: Catalog, files: tuple[Path, Path], tmp_path: Path
) -> None:
    meta = tmp_path / "meta.jsonl"
    meta.write_text(json.dumps({"id": "item-3", "tag": "red"}) + "\n")
    summary = import_files(catalog, *files, "ext", metadata_path=meta, chunk=7)
    assert (summary.counts.added, summary.counts.replaced) == (50, 0)
    assert "imported 50 vectors into 'ext'" in str(summary)
    col = catalog.collection("ext")
    assert catalog.counts(col.id)["indexed"] == 50
    tagged = [a for a in catalog.assets(list(range(1, 60))).values() if a.metadata]
    assert [(a.uri, a.metadata) for a in tagged] == [("vector:item-3", {"tag": "red"})]
    again = import_files(catalog, *files, "ext", chunk=20)
    assert (again.counts.added, again.counts.replaced) == (0, 50)
    assert catalog.counts(col.id)["indexed"] == 50


@pytest.mark.parametrize(
    ("vectors", "ids", "words"),
    [
        (np.zeros((0, 8), np.float32), [], "no vectors"),
        (_rows(3, dim=8).ravel(), ["a"], "2-D"),
        (np.ones((3, 8), np.int64), ["a", "b", "c"], "floating-point"),
        (_rows(3), ["a", "b"], "2 ids for 3 vectors"),
        (_rows(3), ["a", "b", "a"], "appears twice"),
        (_rows(3), ["a", "", "c"], "blank line"),
        (np.array([[1.0] * 8, [1.0] * 8, [np.nan] * 8], np.float32), ["a", "b", "c"], "row 2"),
    ],
)
def test_bad_files_are_refused_before_anything_is_written(
    catalog: Catalog, tmp_path: Path, vectors: np.ndarray, ids: list[str], words: str
) -> None:
    np.save(tmp_path / "v.npy", vectors)
    (tmp_path / "ids.txt").write_text("".join(f"{i}\n" for i in ids))
    with pytest.raises(InvalidArgument, match=words):
        import_files(catalog, tmp_path / "v.npy", tmp_path / "ids.txt", "fresh")
    assert catalog.find_collection("fresh") is None  # not even the collection is created


def test_a_late_bad_row_is_found_before_the_first_chunk_is_written(
    catalog: Catalog, files: tuple[Path, Path]
) -> None:
    data = _rows(50, dim=8)
    data[47] = 0.0
    np.save(files[0], data)
    with pytest.raises(InvalidArgument, match="row 47 is a zero vector"):
        import_files(catalog, *files, "fresh", chunk=10)
    assert catalog.find_collection("fresh") is None


def test_npy_ids_and_a_wrong_dimension(catalog: Catalog, files: tuple[Path, Path]) -> None:
    ids = files[1].with_suffix(".npy")
    np.save(ids, np.arange(1000, 1050))
    assert import_files(catalog, files[0], ids, "ext").counts.added == 50
    np.save(files[0], _rows(50, dim=9))
    before = _state(catalog, "ext")
    with pytest.raises(DimensionMismatch, match="9-d; collection 'ext'"):
        import_files(catalog, files[0], ids, "ext")
    assert _state(catalog, "ext") == before


# -- the CLI and the RPC ------------------------------------------------------------------


@pytest.fixture
def env(settings) -> dict[str, str]:
    return {
        **os.environ,
        "ASSETSEARCH_DATA_DIR": str(settings.data_dir),
        "ASSETSEARCH_DATABASE_URL": settings.resolved_database_url(),
    }


def test_cli_import_vectors(env: dict[str, str], files: tuple[Path, Path]) -> None:
    vectors, ids = map(str, files)
    out = cli("import-vectors", vectors, "--ids", ids, "--collection", "ext", env=env).stdout
    assert "imported 50 vectors into 'ext' (added 50, replaced 0)" in out
    status = json.loads(cli("status", "--json", env=env).stdout)["collections"]["ext"]
    assert (status["indexed"], status["dim"], status["model_spec"]) == (50, 8, EXTERNAL_MODEL)
    np.save(vectors, _rows(50, dim=4))
    bad = cli("import-vectors", vectors, "--ids", ids, "--collection", "ext", env=env, check=False)
    assert bad.returncode == 2 and "4-d; collection 'ext'" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.fixture
def ext(server, client: SearchClient) -> np.ndarray:
    rows = _rows(30, dim=8, seed=4)
    client.import_vectors([f"r{i}" for i in range(30)], rows, collection="ext", batch_size=8)
    server.indexes.sync()
    return rows


def test_rpc_import_is_searchable_by_vector_and_asset(
    client: SearchClient, ext: np.ndarray
) -> None:
    hit = client.search(vector=ext[7], collection="ext", top_k=3).hits[0]
    assert hit.uri == "vector:r7" and hit.media_type == "vector"
    assert hit.score == pytest.approx(1.0, abs=2e-3)
    assert client.search(asset_id=hit.asset_id, collection="ext", top_k=1).hits[0].uri == hit.uri
    (collection,) = [c for c in client.list_collections() if c.name == "ext"]
    assert (collection.dim, collection.indexed) == (8, 30)


def test_text_queries_need_a_loadable_model(server, client: SearchClient, ext, encoder) -> None:
    with pytest.raises(AssetSearchError) as err:
        client.search(text="a red circle", collection="ext")
    assert err.value.status == grpc.StatusCode.FAILED_PRECONDITION
    assert "query it by vector" in str(err.value)
    client.import_vectors(["x"], _rows(1, 8), collection="bogus", model_spec="local-dir:/nope")
    client.import_vectors(["x"], _rows(1, encoder.dim), collection="real", model_spec=encoder.spec)
    server.indexes.sync()
    with pytest.raises(AssetSearchError) as err:
        client.search(text="a red circle", collection="bogus")
    assert err.value.status == grpc.StatusCode.FAILED_PRECONDITION
    assert client.search(text="a red circle", collection="real").hits[0].uri == "vector:x"


def test_rpc_refuses_a_bad_batch_and_writes_nothing(
    server, client: SearchClient, ext: np.ndarray
) -> None:
    before = _state(server.catalog, "ext")
    bad = _rows(3, dim=8)
    bad[2, 0] = np.nan
    for kwargs, words in [
        ({"ids": ["a", "b", "c"], "vectors": bad}, "row 2 holds NaN"),
        ({"ids": ["a", "b", "c"], "vectors": _rows(3, dim=5)}, "5-d"),
        ({"ids": ["a", "a", "c"], "vectors": _rows(3)}, "appears twice"),
        ({"ids": [], "vectors": np.zeros((0, 8))}, "no ids"),
        ({"ids": ["a"], "vectors": _rows(1), "model_spec": "other:x"}, "one model"),
    ]:
        with pytest.raises(AssetSearchError) as err:
            client.import_vectors(collection="ext", **kwargs)
        assert err.value.status in (
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.FAILED_PRECONDITION,
        )
        assert words in str(err.value)
    assert _state(server.catalog, "ext") == before
