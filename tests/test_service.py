"""The real gRPC server and client on both catalogs: search, errors, health, reflection, tailing."""

from __future__ import annotations

import io
import time
from pathlib import Path

import grpc
import pytest
from assetsearch_client import AssetSearchError, InvalidArgument, NotFound, SearchClient
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from indexer.pipeline import Indexer
from latent.catalog import Catalog
from tests.conftest import draw_image, write_library


def index(server, encoder, *paths: Path, collection: str = "default"):
    return Indexer(server.catalog, lambda spec: encoder, collection, encoder.spec).run(paths)


def wait_for(predicate, timeout: float = 5.0) -> float:
    """Poll until predicate() is true; returns the seconds it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - start


@pytest.fixture
def indexed(server, encoder, library: Path) -> Path:
    index(server, encoder, library)
    server.indexes.sync()
    return library


def test_image_searched_by_its_own_bytes_comes_first(client: SearchClient, indexed: Path) -> None:
    for path in sorted(indexed.rglob("*.*"))[:6]:
        hits = client.search(image=path.read_bytes(), top_k=3).hits
        assert hits[0].uri == path.as_uri()
        assert hits[0].score == pytest.approx(1.0, abs=5e-3)
        assert hits[0].media_type == "image" and hits[0].width == 96


def test_like_an_asset_returns_that_asset_first(client: SearchClient, indexed: Path) -> None:
    first = client.search(image=next(indexed.rglob("*.png")).read_bytes(), top_k=24).hits
    assert len(first) == 24
    for hit in first[:5]:
        like = client.search(asset_id=hit.asset_id, top_k=5).hits
        assert like[0].asset_id == hit.asset_id
        scores = [h.score for h in like]
        assert scores == sorted(scores, reverse=True)


def test_text_and_vector_queries(client: SearchClient, indexed: Path, encoder) -> None:
    response = client.search(text="a red circle", top_k=7)
    assert len(response.hits) == 7 and response.index_size == 24
    vector = encoder.encode_texts(["a red circle"])[0] * 3.0  # any length: the server normalises
    again = client.search(vector=vector, top_k=7)
    assert [h.asset_id for h in again.hits] == [h.asset_id for h in response.hits]


def test_get_asset_and_list_collections(client: SearchClient, indexed: Path, encoder) -> None:
    hit = client.search(text="anything", top_k=1).hits[0]
    asset = client.get_asset(hit.asset_id)
    assert asset.uri == hit.uri and asset.state == asset.STATE_INDEXED
    assert len(asset.content_hash) == 64
    (collection,) = client.list_collections()
    assert (collection.name, collection.dim, collection.indexed) == ("default", encoder.dim, 24)
    assert collection.model_spec == encoder.spec and collection.index_size == 24


@pytest.mark.parametrize(
    ("kwargs", "code", "words"),
    [
        ({"text": "   "}, grpc.StatusCode.INVALID_ARGUMENT, "empty"),
        ({"vector": [1.0, 2.0]}, grpc.StatusCode.INVALID_ARGUMENT, "dimensions"),
        ({"image": b"definitely not an image"}, grpc.StatusCode.INVALID_ARGUMENT, "not an image"),
        ({"image": b""}, grpc.StatusCode.INVALID_ARGUMENT, "empty"),
        ({"asset_id": 987654}, grpc.StatusCode.NOT_FOUND, "987654"),
        ({"text": "x", "collection": "nope"}, grpc.StatusCode.NOT_FOUND, "nope"),
        ({"text": "x", "top_k": 100000}, grpc.StatusCode.INVALID_ARGUMENT, "top_k"),
        ({"text": "x", "top_k": -1}, grpc.StatusCode.INVALID_ARGUMENT, "top_k"),
    ],
)
def test_bad_requests_get_the_right_status(
    client: SearchClient, indexed: Path, kwargs, code, words
) -> None:
    with pytest.raises(AssetSearchError) as err:
        client.search(**kwargs)
    assert err.value.status == code
    assert words in str(err.value)
    assert "Traceback" not in str(err.value)


def test_empty_query_and_unknown_asset_via_raw_stub(server, indexed: Path) -> None:
    from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb
    from assetsearch_client._pb.assetsearch.v1 import search_pb2_grpc as pb_grpc

    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.SearchServiceStub(channel)
        for request in (pb.SearchRequest(), pb.SearchRequest(query=pb.QueryTerm())):
            with pytest.raises(grpc.RpcError) as err:
                stub.Search(request)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as err:
            stub.GetAsset(pb.GetAssetRequest(asset_id=424242))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_and_reflection(server) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "assetsearch.v1.SearchService"):
            status = health.Check(health_pb2.HealthCheckRequest(service=service)).status
            assert status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (reply,) = list(stub.ServerReflectionInfo(iter([request])))
        names = {s.name for s in reply.list_services_response.service}
        assert {"assetsearch.v1.SearchService", "grpc.health.v1.Health"} <= names


def test_a_file_indexed_while_serving_is_searchable_within_5s(
    client: SearchClient, indexed: Path, encoder, server
) -> None:
    new = indexed / "late" / "new.png"
    new.parent.mkdir()
    draw_image(4242).save(new)
    index(server, encoder, indexed)  # the indexer writes to the catalog directly; the server tails
    data = new.read_bytes()
    wait_for(lambda: client.search(image=data, top_k=1).hits[0].uri == new.as_uri(), timeout=5.0)


def test_a_deleted_file_leaves_no_stale_hit(
    client: SearchClient, indexed: Path, encoder, server
) -> None:
    victim = sorted(indexed.rglob("*.jpg"))[0]
    data = victim.read_bytes()
    victim.unlink()
    index(server, encoder, indexed)
    wait_for(
        lambda: all(h.uri != victim.as_uri() for h in client.search(image=data, top_k=30).hits)
    )
    assert len(client.search(image=data, top_k=30).hits) == 23


def test_new_collection_is_picked_up_and_searchable(
    client: SearchClient, server, encoder, tmp_path: Path
) -> None:
    lib = tmp_path / "other"
    write_library(lib, 4, start=50)
    index(server, encoder, lib, collection="other")
    image = next(lib.rglob("*.png"))

    def top_uri() -> str:
        hits = client.search(image=image.read_bytes(), collection="other", top_k=2).hits
        return hits[0].uri if hits else ""

    # The tail thread may have loaded the collection while it was still empty: its files
    # become searchable at the next poll, like any others.
    wait_for(lambda: top_uri() == image.as_uri(), timeout=5.0)


def test_restart_serves_the_same_results_from_its_snapshot(
    settings, encoder, indexed: Path, server, client: SearchClient
) -> None:
    from latent.models.encoders import EncoderCache
    from service.server import AssetSearchServer

    query = next(indexed.rglob("*.png")).read_bytes()
    before = [h.asset_id for h in client.search(image=query, top_k=10).hits]
    server.stop(grace=0)  # writes a snapshot
    assert list((settings.data_dir / "snapshots" / "default").glob("index-*.faiss"))
    encoders = EncoderCache()
    encoders.put(encoder)
    again = AssetSearchServer(settings, Catalog(settings.resolved_database_url()), encoders)
    port = again.start(host="127.0.0.1", port=0)
    try:
        with SearchClient(f"127.0.0.1:{port}") as c2:
            assert [h.asset_id for h in c2.search(image=query, top_k=10).hits] == before
    finally:
        again.stop(grace=0)
        again.catalog.close()


def test_query_image_formats(client: SearchClient, indexed: Path) -> None:
    buffer = io.BytesIO()
    draw_image(3).convert("RGBA").save(buffer, format="WEBP")
    assert client.search(image=buffer.getvalue(), top_k=1).hits


def test_weighted_terms_move_the_query(client: SearchClient, indexed: Path) -> None:
    from assetsearch_client import terms

    hits = client.search(text="anything", top_k=24).hits
    a, b = hits[0].asset_id, hits[-1].asset_id
    # a - a + b is b: the weights really subtract
    moved = client.search(
        terms=[
            terms.Asset(a),
            terms.Asset(a, weight=-1),
            terms.Asset(b),
        ],
        top_k=1,
    ).hits
    assert moved[0].asset_id == b
    same = client.search(expression=f"asset:{a} - asset:{a} + 0.5*asset:{b}", top_k=1).hits
    assert same[0].asset_id == b


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ('"red" - "red"', "cancel out"),
        ('"red" +', "column 8"),
        ("image:/etc/hostname", "cannot read"),
        ("asset:999999", "999999"),
    ],
)
def test_bad_expressions_are_invalid_or_not_found(
    client: SearchClient, indexed: Path, expression, words
) -> None:
    with pytest.raises((InvalidArgument, NotFound)) as err:
        client.search(expression=expression)
    assert words in str(err.value)


def test_exactly_one_query_form(server, indexed: Path) -> None:
    from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb
    from assetsearch_client._pb.assetsearch.v1 import search_pb2_grpc as pb_grpc

    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.SearchServiceStub(channel)
        both = pb.SearchRequest(query=pb.QueryTerm(text="a"), expression='"b"')
        with pytest.raises(grpc.RpcError) as err:
            stub.Search(both)
        assert (
            err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            and "exactly one" in err.value.details()
        )
