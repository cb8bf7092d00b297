"""LibraryService through the real server and light client: uploads, deletes, metadata, collections.

The server runs with a 1 MiB file limit and a 64 KiB message limit, so one test file
is larger than a message (it must stream in chunks) and another is larger than the limit.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from assetsearch_client import SearchClient
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb
from assetsearch_client._pb.assetsearch.v1 import search_pb2_grpc as pb_grpc
from assetsearch_client.client import struct
from assetsearch_client.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from PIL import Image
from pydantic import ByteSize

from latent.query.filters import parse_filter
from latent.settings import Settings
from service.convert.filters import filter_message
from service.library import _metadata as library_metadata
from tests.conftest import draw_image
from tests.running import wait_for

FILE_LIMIT = 2**20
MESSAGE_LIMIT = 64 * 1024


@pytest.fixture
def settings(tmp_path: Path, database_url: str, tiny_model: str) -> Settings:
    """The conftest settings with small file and message limits."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        model=tiny_model,
        poll_interval=0.1,
        max_file_bytes=ByteSize(FILE_LIMIT),
        max_message_bytes=ByteSize(MESSAGE_LIMIT),
    )


def png(seed: int, size: tuple[int, int] = (96, 80)) -> bytes:
    out = io.BytesIO()
    draw_image(seed, size).save(out, format="PNG")
    return out.getvalue()


def noise_png(side: int) -> bytes:
    """A PNG of random pixels: barely compressible, so about 3 * side**2 bytes."""
    pixels = np.random.default_rng(side).integers(0, 256, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def top_hit(client: SearchClient, image: bytes, collection: str = "", **kw: Any) -> int | None:
    hits = client.search(image=image, top_k=1, collection=collection, **kw).hits
    return hits[0].asset_id if hits else None


def catalog_state(server) -> tuple[dict[str, int], int]:
    """Asset counts and the change log's head of the default collection."""
    info = server.catalog.collection("default")
    return info.counts, server.catalog.head_seq(info.id)


class Unseekable(io.BytesIO):
    """A stream whose size the client cannot learn (like a pipe): it sends no size_bytes."""

    def seekable(self) -> bool:
        return False

    def seek(self, *args: Any) -> int:
        raise io.UnsupportedOperation("not seekable")

    def tell(self) -> int:
        raise io.UnsupportedOperation("not seekable")


def test_upsert_streams_replaces_and_refuses_bad_bytes(
    server, client: SearchClient, encoder
) -> None:
    first = png(1)
    made = client.upsert_asset(first, "dam://a", metadata={"tag": "red"}, chunk_size=1000)
    asset = made.asset
    assert made.created and asset.uri == "dam://a" and asset.collection == "default"
    assert asset.state == pb.Asset.STATE_INDEXED and asset.media_type == "image"
    assert (asset.size_bytes, asset.width, asset.height) == (len(first), 96, 80)
    assert asset.content_hash == hashlib.sha256(first).hexdigest()
    assert dict(asset.metadata) == {"tag": "red"}
    assert abs(asset.mtime.ToNanoseconds() - time.time_ns()) < 60 * 10**9
    wait_for(lambda: top_hit(client, first) == asset.id)

    # Larger than one message: refused whole, accepted in chunks below the limit.
    big = noise_png(200)
    assert MESSAGE_LIMIT < len(big) < FILE_LIMIT
    with pytest.raises(ResourceExhausted):
        client.upsert_asset(big, "dam://big", chunk_size=len(big))
    streamed = client.upsert_asset(big, "dam://big", chunk_size=16 * 1024)
    assert streamed.created and streamed.asset.size_bytes == len(big)
    assert streamed.asset.content_hash == hashlib.sha256(big).hexdigest()

    # The same uri again: the same asset with the new vector; the old one is gone.
    second = png(2)
    replaced = client.upsert_asset(second, "dam://a", metadata={"tag": "blue"})
    assert not replaced.created and replaced.asset.id == asset.id
    assert dict(replaced.asset.metadata) == {"tag": "blue"}
    wait_for(lambda: top_hit(client, second) == asset.id)
    stored = server.catalog.asset_vector(asset.id, encoder.dim)
    assert float(stored @ encoder.encode_images([Image.open(io.BytesIO(second))])[0]) > 0.999
    live = server.indexes.get("default")
    wait_for(lambda: len(live.generation.index) == 2)  # two assets, two vectors
    response = client.search(image=first, top_k=5)
    assert [h.asset_id for h in response.hits].count(asset.id) == 1

    # Bad bytes, empty, oversize, short or malformed uploads write nothing.
    before = catalog_state(server)
    with pytest.raises(InvalidArgument, match="an HTML page"):
        client.upsert_asset(b"<!DOCTYPE html><html></html>", "dam://page.jpg")
    with pytest.raises(InvalidArgument, match="damaged or truncated"):
        client.upsert_asset(first[: len(first) // 2], "dam://half.png")
    with pytest.raises(InvalidArgument, match=r"empty file \(0 bytes\)"):
        client.upsert_asset(b"", "dam://empty")
    too_big = b"\x89PNG" + bytes(FILE_LIMIT)
    with pytest.raises(InvalidArgument, match=f"above the {FILE_LIMIT}-byte limit.*MAX_FILE_BYTES"):
        client.upsert_asset(too_big, "dam://huge", chunk_size=32 * 1024)  # declared size
    with pytest.raises(InvalidArgument, match=f"more than {FILE_LIMIT} bytes is above the"):
        client.upsert_asset(Unseekable(too_big), "dam://huge", chunk_size=32 * 1024)
    with pytest.raises(InvalidArgument, match="needs a uri"):
        client.upsert_asset(first, "")
    with pytest.raises(InvalidArgument, match="NUL"):
        client.upsert_asset(first, "dam://a\x00b")
    with pytest.raises(InvalidArgument, match="at most 2000"):
        client.upsert_asset(first, "u" * 2001)
    with pytest.raises(NotFound, match="create it first"):
        client.upsert_asset(first, "dam://x", collection="no-such-collection")
    assert catalog_state(server) == before
    assert server.catalog.find_asset(server.catalog.collection("default").id, "dam://huge") is None

    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.LibraryServiceStub(channel)
        header = pb.UpsertAssetHeader(uri="dam://short", size_bytes=len(first) + 10)
        short = [pb.UpsertAssetRequest(header=header), pb.UpsertAssetRequest(chunk=first)]
        chunk_first = [pb.UpsertAssetRequest(chunk=first)]
        two_headers = [pb.UpsertAssetRequest(header=header)] * 2
        for requests, reason in (
            (short, "ended after"),
            (chunk_first, "must be its header"),
            (two_headers, "one header"),
            ([], "upload is empty"),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                stub.UpsertAsset(iter(requests), timeout=10)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert reason in refused.value.details()

        def slow() -> Any:  # a client that stalls past its deadline mid-upload
            yield pb.UpsertAssetRequest(header=pb.UpsertAssetHeader(uri="dam://slow"))
            yield pb.UpsertAssetRequest(chunk=first[:100])
            time.sleep(1.0)
            yield pb.UpsertAssetRequest(chunk=first[100:])

        with pytest.raises(grpc.RpcError) as late:
            stub.UpsertAsset(slow(), timeout=0.4)
        assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert catalog_state(server) == before


def test_delete_by_id_and_uri_leaves_search(server, client: SearchClient) -> None:
    images = {f"dam://{i}": png(10 + i) for i in range(3)}
    ids = {uri: client.upsert_asset(data, uri).asset.id for uri, data in images.items()}
    for uri, data in images.items():
        wait_for(lambda uri=uri, data=data: top_hit(client, data) == ids[uri])

    assert client.delete_asset(ids["dam://0"]) == ids["dam://0"]
    assert client.delete_asset(uri="dam://1", collection="default") == ids["dam://1"]
    gone = {ids["dam://0"], ids["dam://1"]}
    wait_for(
        lambda: {h.asset_id for h in client.search(text="x", top_k=10).hits} == {ids["dam://2"]}
    )
    assert client.get_asset(ids["dam://0"]).state == pb.Asset.STATE_DELETED
    assert gone.isdisjoint(h.asset_id for h in client.search(image=images["dam://0"]).hits)

    with pytest.raises(NotFound, match="is deleted"):
        client.delete_asset(ids["dam://0"])
    with pytest.raises(NotFound, match="does not exist"):
        client.delete_asset(999_999)
    with pytest.raises(NotFound, match="no asset with uri"):
        client.delete_asset(uri="dam://never")
    with pytest.raises(NotFound, match="collection 'nope' does not exist"):
        client.delete_asset(uri="dam://2", collection="nope")
    with pytest.raises(InvalidArgument, match="give asset_id, or uri"):
        client.delete_asset()

    # Uploading a deleted uri again brings the asset back under its id.
    back = client.upsert_asset(images["dam://0"], "dam://0")
    assert back.created and back.asset.id == ids["dam://0"]
    wait_for(lambda: top_hit(client, images["dam://0"]) == ids["dam://0"])


def test_update_metadata_replace_and_merge_are_filterable(server, client: SearchClient) -> None:
    a = client.upsert_asset(png(21), "dam://a", metadata={"tag": "red", "n": 1}).asset
    b = client.upsert_asset(png(22), "dam://b", metadata={"tag": "red"}).asset
    live = server.indexes.get("default")
    wait_for(lambda: len(live.generation.index) == 2)

    def matching(expression: str) -> set[int]:
        flt = filter_message(parse_filter(expression))
        return {h.asset_id for h in client.search(text="x", top_k=10, filter=flt).hits}

    assert matching("meta.tag=red") == {a.id, b.id}
    replaced = client.update_metadata({"tag": "blue", "box": {"w": 3, "h": 4}}, a.id)
    assert json.loads(json.dumps(dict(replaced.metadata["box"]))) == {"w": 3, "h": 4}
    assert set(replaced.metadata) == {"tag", "box"}  # "n" went: a replace
    assert matching("meta.tag=blue") == {a.id} and matching("meta.tag=red") == {b.id}

    merged = client.update_metadata(
        {"box": {"h": None, "d": 5}, "tag": None, "extra": "yes"}, a.id, merge=True
    )
    assert json.loads(json.dumps(_plain(merged.metadata))) == {
        "box": {"w": 3, "d": 5},
        "extra": "yes",
    }
    assert matching("meta.box.d=5") == {a.id}
    assert matching("meta.tag=blue") == set()
    by_uri = client.update_metadata({"tag": "green"}, uri="dam://b", merge=True)
    assert by_uri.id == b.id and _plain(by_uri.metadata) == {"tag": "green"}
    assert matching("meta.tag=green") == {b.id}
    # Hits carry the new metadata once the servers have read the change log.
    wait_for(
        lambda: (
            _plain(client.search(image=png(21), top_k=1).hits[0].metadata)
            == {"box": {"w": 3, "d": 5}, "extra": "yes"}
        )
    )

    with pytest.raises(NotFound):
        client.update_metadata({"x": 1}, 999_999)
    client.delete_asset(b.id)
    with pytest.raises(NotFound, match="is deleted"):
        client.update_metadata({"x": 1}, b.id)
    # Above the 64 KiB message limit of this server the metadata limit is checked too.
    with pytest.raises(InvalidArgument, match="at most 65536 bytes"):
        library_metadata(struct({"big": "x" * 70_000}))


def _plain(message: Any) -> dict[str, Any]:
    from google.protobuf import json_format

    return json_format.MessageToDict(message)


def test_create_and_delete_collections(server, client: SearchClient, tiny_model: str) -> None:
    made = client.create_collection("photos.v1-a_b")
    assert (made.name, made.model_spec, made.dim, made.indexed) == (
        "photos.v1-a_b",
        tiny_model,
        64,
        0,
    )
    with pytest.raises(AlreadyExists, match="already exists"):
        client.create_collection("photos.v1-a_b")
    with pytest.raises(InvalidArgument, match="letters, digits"):
        client.create_collection("a/b")
    with pytest.raises(InvalidArgument, match="letters, digits"):
        client.create_collection("x" * 201)
    with pytest.raises(FailedPrecondition) as unloadable:
        client.create_collection("broken", "local-dir:/no/such/model")
    assert "/no/such/model" in str(unloadable.value)
    assert server.catalog.find_collection("broken") is None

    image = png(31)
    put = client.upsert_asset(image, "dam://p", collection="photos.v1-a_b").asset
    assert put.collection == "photos.v1-a_b"
    wait_for(lambda: top_hit(client, image, collection="photos.v1-a_b") == put.id)
    default = client.upsert_asset(png(32), "dam://d").asset  # the default one is made for it
    names = {c.name for c in client.list_collections()}
    assert names == {"photos.v1-a_b", "default"}

    live = server.indexes.get("photos.v1-a_b")
    written = live.write_snapshot()
    assert written is not None and written.exists()
    snapshot_dir = written.parent
    job = server.catalog.jobs.create_job(live.collection.id, ["/lib"], False, "another-replica")
    with pytest.raises(FailedPrecondition, match=f"index job {job.id} .* cancel it first"):
        client.delete_collection("photos.v1-a_b")
    assert server.catalog.jobs.cancel_job(job.id)
    client.delete_collection("photos.v1-a_b")
    assert {c.name for c in client.list_collections()} == {"default"}
    assert not snapshot_dir.exists()
    with pytest.raises(NotFound):
        client.search(image=image, collection="photos.v1-a_b")
    with pytest.raises(NotFound):
        client.get_asset(put.id)
    with pytest.raises(NotFound):
        client.delete_collection("photos.v1-a_b")
    assert "photos.v1-a_b" not in server.indexes.all()

    # The same name again is a new, empty collection; the default one may go too.
    client.create_collection("photos.v1-a_b")
    assert client.search(image=image, collection="photos.v1-a_b").hits == []
    client.delete_collection("default")
    with pytest.raises(NotFound):
        client.get_asset(default.id)
    assert {c.name for c in client.list_collections()} == {"photos.v1-a_b"}

    # Another replica (straight in the catalog) deletes it, or deletes and makes it anew:
    # this server drops the old index at its next poll and serves the new collection.
    again = client.upsert_asset(image, "dam://p", collection="photos.v1-a_b").asset
    wait_for(lambda: top_hit(client, image, collection="photos.v1-a_b") == again.id)
    server.catalog.delete_collection("photos.v1-a_b")
    anew = server.catalog.create_collection("photos.v1-a_b", tiny_model, 64)
    served = lambda: server.indexes.all().get("photos.v1-a_b")  # noqa: E731
    wait_for(lambda: served() is not None and served().collection.id == anew.id)
    assert client.search(image=image, collection="photos.v1-a_b").hits == []
    server.catalog.delete_collection("photos.v1-a_b")
    wait_for(lambda: "photos.v1-a_b" not in server.indexes.all())


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_cli_put_and_rm(server, client: SearchClient, tmp_path: Path) -> None:
    env = {**os.environ, "ASSETSEARCH_SERVER": f"127.0.0.1:{server.port}"}
    files = []
    for i in range(2):
        path = tmp_path / f"pic{i}.png"
        path.write_bytes(png(40 + i))
        files.append(path)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")

    out = cli("put", str(files[0]), str(bad), str(files[1]), "--metadata", '{"k": 1}', env=env)
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["created", "created"]
    assert [line.split()[2] for line in lines] == [str(files[0]), str(files[1])]
    assert f"error: {bad}: INVALID_ARGUMENT: " in out.stderr and "not an image" in out.stderr
    ids = [int(line.split()[1]) for line in lines]
    assert _plain(client.get_asset(ids[0]).metadata) == {"k": 1}

    again = cli("put", str(files[1]), "--id", "dam://mine", "--json", env=env)
    assert again.returncode == 0, again.stderr
    row = json.loads(again.stdout)
    assert (row["status"], row["uri"]) == ("created", "dam://mine")
    replaced = cli("put", str(files[0]), "--id", "dam://mine", env=env)
    assert replaced.stdout.split() == ["replaced", str(row["asset_id"]), "dam://mine"]
    usage = cli("put", str(files[0]), str(files[1]), "--id", "x", env=env)
    assert usage.returncode == 2 and "exactly one FILE" in usage.stderr

    removed = cli("rm", str(ids[0]), "999999", env=env)
    assert removed.returncode == 1
    assert removed.stdout.splitlines() == [f"deleted  {ids[0]}"]
    assert "error: 999999: NOT_FOUND" in removed.stderr
    by_uri = cli("rm", "--uri", "dam://mine", "--json", env=env)
    assert by_uri.returncode == 0, by_uri.stderr
    assert json.loads(by_uri.stdout) == {
        "status": "deleted",
        "asset_id": row["asset_id"],
        "uri": "dam://mine",
    }
    assert client.get_asset(row["asset_id"]).state == pb.Asset.STATE_DELETED
    not_id = cli("rm", "dam://mine", env=env)
    assert not_id.returncode == 2 and "--uri" in not_id.stderr
