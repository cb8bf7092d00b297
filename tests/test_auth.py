"""API keys and scopes: the key store on each backend, the interceptor through the real server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from assetsearch_client import (
    NotFound,
    PermissionDenied,
    SearchClient,
    Unauthenticated,
    Unavailable,
)
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb
from assetsearch_client._pb.assetsearch.v1 import search_pb2_grpc as pb_grpc
from assetsearch_client.terms import Text
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from cli.main import main
from latent.catalog import Catalog
from latent.catalog.keys import SCOPES, parse_key, scope_allows
from latent.errors import AssetSearchError, InvalidArgument
from latent.errors import NotFound as CatalogNotFound
from latent.settings import Settings
from service import auth
from service.auth import METHOD_SCOPES, auth_required, is_loopback, method_rules
from service.server import AssetSearchServer
from tests.running import start_server

DIM = 64  # the tiny model's
METHODS = [
    (service, method)
    for service in pb.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]


def _path(service: Any, method: Any) -> str:
    return f"/{service.full_name}/{method.name}"


def call_status(
    channel: grpc.Channel, service: Any, method: Any, key: str | None = None
) -> tuple[grpc.StatusCode, str]:
    """Call one RPC with its default request message; its status code and details."""
    request = getattr(pb, method.input_type.name)()
    reply = getattr(pb, method.output_type.name)
    metadata = (("authorization", f"Bearer {key}"),) if key else ()
    kinds = {
        (False, False): channel.unary_unary,
        (False, True): channel.unary_stream,
        (True, False): channel.stream_unary,
        (True, True): channel.stream_stream,
    }
    stub = kinds[method.client_streaming, method.server_streaming](
        _path(service, method),
        request_serializer=type(request).SerializeToString,
        response_deserializer=reply.FromString,
    )
    argument = iter([request]) if method.client_streaming else request
    try:
        answer = stub(argument, metadata=metadata, timeout=10)
        if method.server_streaming:
            list(answer)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def _start(settings: Settings, encoder: Any, host: str = "127.0.0.1") -> AssetSearchServer:
    return start_server(settings, encoder, host)


@pytest.fixture
def sqlite_settings(tmp_path: Path, tiny_model: str) -> Settings:
    """Settings over SQLite: the calls' checks do not depend on the backend (the store's do)."""
    return Settings(data_dir=tmp_path / "data", model=tiny_model, poll_interval=0.1)


def _secured(settings: Settings, encoder: Any) -> Iterator[AssetSearchServer]:
    srv = _start(settings.model_copy(update={"auth": "required"}), encoder)
    yield srv
    srv.stop(grace=0)
    srv.catalog.close()


@pytest.fixture
def secured(sqlite_settings: Settings, encoder: Any) -> Iterator[AssetSearchServer]:
    """The real server on loopback with API keys required, over SQLite."""
    yield from _secured(sqlite_settings, encoder)


@pytest.fixture
def secured_each_backend(settings: Settings, encoder: Any) -> Iterator[AssetSearchServer]:
    """The real server with API keys required, over SQLite and over PostgreSQL."""
    yield from _secured(settings, encoder)


def client_of(server: AssetSearchServer, key: str | None = None) -> SearchClient:
    return SearchClient(f"127.0.0.1:{server.port}", timeout=30, api_key=key)


def new_key(server: AssetSearchServer, scope: str, collections: list[str] | None = None) -> str:
    return server.catalog.keys.create(scope, collections).key


def vectors(n: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


# -- the key store ------------------------------------------------------------------------


def test_keys_are_stored_hashed_and_checked(catalog: Catalog) -> None:
    new = catalog.keys.create("write", ["photos", "video"], name="dam sync")
    key_id, secret = parse_key(new.key) or ("", "")
    assert new.record.key_id == key_id and len(secret) >= 43  # 32 random bytes
    stored = catalog.keys.lookup(key_id)
    assert stored is not None and stored.matches(secret) and not stored.matches(secret[:-1] + "x")
    assert secret not in stored.secret_sha256 and len(stored.secret_sha256) == 64
    with catalog.engine.connect() as conn:  # the secret is nowhere in the table
        rows = conn.exec_driver_sql("SELECT * FROM api_keys").all()
    assert rows and not any(secret in str(v) for row in rows for v in row)
    record = stored.record
    assert (record.scope, record.name, record.revoked_at) == ("write", "dam sync", None)
    assert record.collections == frozenset({"photos", "video"})
    assert record.created_at.tzinfo is not None
    assert catalog.keys.create("read").record.collections is None  # every collection


def test_list_revoke_and_snapshot(catalog: Catalog) -> None:
    first = catalog.keys.create("read")
    second = catalog.keys.create("admin", name="ops")
    assert [r.key_id for r in catalog.keys.all()] == [first.record.key_id, second.record.key_id]
    revoked = catalog.keys.revoke(first.record.key_id)
    assert revoked.revoked and revoked.id == first.record.id
    again = catalog.keys.revoke(str(first.record.id))  # by row id; a second revoke keeps the time
    assert again.revoked_at == revoked.revoked_at
    snap = catalog.keys.snapshot()
    assert snap.keys() == {first.record.key_id, second.record.key_id}
    assert (
        snap[first.record.key_id].record.revoked and not snap[second.record.key_id].record.revoked
    )
    with pytest.raises(CatalogNotFound, match="keys list"):
        catalog.keys.revoke("nosuchkey123")
    with pytest.raises(CatalogNotFound):
        catalog.keys.revoke(999)


def test_bad_keys_are_refused_with_reasons(catalog: Catalog) -> None:
    with pytest.raises(InvalidArgument, match="unknown scope 'owner'"):
        catalog.keys.create("owner")
    with pytest.raises(InvalidArgument, match="collection name"):
        catalog.keys.create("read", ["../etc"])
    with pytest.raises(InvalidArgument, match="longer than"):
        catalog.keys.create("read", name="x" * 201)
    assert catalog.keys.all() == []
    for junk in (
        "",
        "Bearer",
        "ask_short_secret",
        "ask_abcdefghijkl",
        "xyz_abcdefghijkl_" + "s" * 43,
    ):
        assert parse_key(junk) is None


def test_scopes_are_ordered() -> None:
    assert SCOPES == ("read", "write", "admin")
    allowed = {(h, n) for h in SCOPES for n in SCOPES if scope_allows(h, n)}
    assert allowed == {
        ("read", "read"),
        ("write", "read"),
        ("write", "write"),
        ("admin", "read"),
        ("admin", "write"),
        ("admin", "admin"),
    }
    assert not scope_allows("root", "read") and not scope_allows("admin", "root")


# -- the policy -------------------------------------------------------------------------


def test_every_rpc_has_a_scope() -> None:
    """A new RPC in the proto fails here until METHOD_SCOPES gives it a scope."""
    paths = {_path(s, m) for s, m in METHODS}
    assert set(METHOD_SCOPES) == paths
    rules = method_rules()
    assert set(rules) == paths and all(rule.scope for rule in rules.values())
    search = "/assetsearch.v1.SearchService/"
    library = "/assetsearch.v1.LibraryService/"
    assert {p for p, s in METHOD_SCOPES.items() if s == "admin"} == {
        library + "CreateCollection",
        library + "DeleteCollection",
    }
    writes = {p for p, s in METHOD_SCOPES.items() if s == "write" and p.startswith(search)}
    assert writes == {search + n for n in ("CreateDirection", "DeleteDirection", "ImportVectors")}
    jobs = {p: s for p, s in METHOD_SCOPES.items() if "JobService" in p}
    assert jobs and set(jobs.values()) == {"write"}


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.4.5", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("[::]", False),
        ("10.1.2.3", False),
        ("example.internal", False),
        ("", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_auth_mode_by_address() -> None:
    assert auth_required(Settings(), "0.0.0.0") is True
    assert auth_required(Settings(), "127.0.0.1") is False
    assert auth_required(Settings(auth="required"), "127.0.0.1") is True
    assert auth_required(Settings(auth="off", insecure=True), "0.0.0.0") is False
    with pytest.raises(AssetSearchError, match="--insecure"):
        auth_required(Settings(auth="off"), "0.0.0.0")
    interceptor = auth.AuthInterceptor(auth.KeyCache(dict, lambda _: None, 1.0), "default")
    interceptor.configure(Settings(), "0.0.0.0")
    assert interceptor.required and not interceptor.reflection_open
    interceptor.configure(Settings(auth="required"), "127.0.0.1")
    assert interceptor.required and interceptor.reflection_open


def test_serve_refuses_auth_off_outside_loopback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    code = main(["serve", "--host", "0.0.0.0", "--port", "0", "--auth", "off", *data])
    err = capsys.readouterr().err
    assert code == 2 and "refusing to serve on 0.0.0.0 with --auth off" in err
    assert "--insecure" in err


def test_insecure_allows_auth_off_outside_loopback(sqlite_settings: Settings, encoder: Any) -> None:
    srv = _start(
        sqlite_settings.model_copy(update={"auth": "off", "insecure": True}), encoder, "0.0.0.0"
    )
    try:
        with client_of(srv) as client:
            assert client.list_collections() == []
    finally:
        srv.stop(grace=0)
        srv.catalog.close()


def test_key_cache_reloads_each_poll_and_looks_up_misses() -> None:
    now = [0.0]
    loads: list[int] = []
    lookups: list[str] = []
    table: dict[str, Any] = {"a": "A"}

    def load() -> dict[str, Any]:
        loads.append(1)
        return dict(table)

    def lookup(key_id: str) -> Any:
        lookups.append(key_id)
        return table.get(key_id)

    cache = auth.KeyCache(load, lookup, ttl=1.0, clock=lambda: now[0])
    assert cache.get("a") == "A" and len(loads) == 1
    table["b"] = "B"
    assert cache.get("b") == "B" and lookups == ["b"]  # a new key works before the reload
    assert cache.get("zz") is None and cache.get("zz") is None
    assert lookups == ["b", "zz"]  # a made-up key costs one query per poll
    del table["a"]
    assert cache.get("a") == "A"  # within the poll
    now[0] = 1.0
    assert cache.get("a") is None and len(loads) == 2  # refused from the next poll on


# -- through the real server ------------------------------------------------------------


def test_every_rpc_needs_a_key(secured: AssetSearchServer) -> None:
    valid = parse_key(new_key(secured, "admin"))
    assert valid is not None
    keys = {
        "none": None,
        "malformed": "letmein",
        "unknown": "ask_AAAAAAAAAAAA_" + "s" * 43,
        "wrong secret": f"ask_{valid[0]}_" + "s" * 43,
    }
    with grpc.insecure_channel(f"127.0.0.1:{secured.port}") as channel:
        for service, method in METHODS:
            for what, key in keys.items():
                code, details = call_status(channel, service, method, key)
                assert code == grpc.StatusCode.UNAUTHENTICATED, (method.name, what, details)
                assert details, (method.name, what)
    with client_of(secured) as client, pytest.raises(Unauthenticated, match="Bearer"):
        client.list_collections()


def test_each_scope_reaches_exactly_its_rpcs(secured: AssetSearchServer) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{secured.port}") as channel:
        for scope in SCOPES:
            key = new_key(secured, scope)
            for service, method in METHODS:
                need = METHOD_SCOPES[_path(service, method)]
                code, details = call_status(channel, service, method, key)
                if scope_allows(scope, need):
                    # Through to the servicer: its own answer to an empty request.
                    denied = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
                    assert code not in denied, (scope, method.name, details)
                else:
                    assert code == grpc.StatusCode.PERMISSION_DENIED, (scope, method.name)
                    assert f"needs an API key with scope {need!r}" in details


def test_read_key_on_write_calls(secured: AssetSearchServer) -> None:
    read, write = new_key(secured, "read"), new_key(secured, "write")
    with client_of(secured, read) as reader, client_of(secured, write) as writer:
        with pytest.raises(PermissionDenied, match="scope 'write'"):
            reader.import_vectors(["a"], vectors(1, 0))
        with pytest.raises(PermissionDenied, match="scope 'write'"):
            reader.create_direction("smile", positive=[Text("a smile")], negative=[Text("a frown")])
        assert writer.import_vectors(["a"], vectors(1, 0)).added == 1
        with pytest.raises(PermissionDenied, match="scope 'admin'"):
            writer.delete_collection("default")
        assert [c.name for c in reader.list_collections()] == ["default"]


def test_collection_limited_keys(secured: AssetSearchServer) -> None:
    admin = new_key(secured, "admin")
    photos_writer = new_key(secured, "write", ["photos"])
    photos_reader = new_key(secured, "read", ["photos"])
    with client_of(secured, admin) as client:
        client.import_vectors(["d0", "d1"], vectors(2, 1))  # the default collection
    with client_of(secured, photos_writer) as writer:
        assert writer.import_vectors(["p0", "p1"], vectors(2, 2), collection="photos").added == 2
        for other in ("", "default", "video"):
            with pytest.raises(PermissionDenied, match="may not use collection"):
                writer.import_vectors(["x"], vectors(1, 3), collection=other)
    secured.indexes.sync()
    with client_of(secured, photos_reader) as reader:
        found = reader.search(vector=vectors(2, 2)[0], collection="photos", top_k=2)
        assert found.collection == "photos" and {h.uri for h in found.hits} == {
            "vector:p0",
            "vector:p1",
        }
        with pytest.raises(PermissionDenied, match="'default'"):
            reader.search(vector=vectors(1, 0)[0])
        with pytest.raises(PermissionDenied):
            list(reader.interpolate('"a"', '"b"', collection="default", steps=2))
        assert [c.name for c in reader.list_collections()] == ["photos"]
        photo = reader.get_asset(found.hits[0].asset_id)
        assert photo.collection == "photos"
        other = secured.catalog.file_states(secured.catalog.collection("default").id)
        with pytest.raises(PermissionDenied, match="may not use collection 'default'"):
            reader.get_asset(other["vector:d0"].asset_id)
    with client_of(secured, photos_writer) as writer:  # by asset id: found by a lookup
        with pytest.raises(PermissionDenied, match="'default'"):
            writer.delete_asset(other["vector:d0"].asset_id)
        with pytest.raises(PermissionDenied, match="'default'"):
            writer.update_metadata({"tag": "x"}, other["vector:d0"].asset_id)
    with client_of(secured, admin) as client:
        assert [c.name for c in client.list_collections()] == ["default", "photos"]
        assert client.get_asset(other["vector:d0"].asset_id).uri == "vector:d0"


def test_upload_header_collection_is_checked(secured: AssetSearchServer) -> None:
    key = new_key(secured, "write", ["photos"])
    with client_of(secured, key) as client:
        with pytest.raises(PermissionDenied, match="may not use collection 'video'"):
            client.upsert_asset(b"not an image", uri="x.png", collection="video")
        with pytest.raises(PermissionDenied, match="may not use collection 'default'"):
            client.upsert_asset(b"not an image", uri="x.png")


def test_revoked_key_is_refused_within_one_poll(secured_each_backend: AssetSearchServer) -> None:
    secured = secured_each_backend
    poll = secured.settings.poll_interval
    new = secured.catalog.keys.create("read")
    with client_of(secured, new.key) as client:
        assert client.list_collections() == []  # a key created a moment ago works at once
        secured.catalog.keys.revoke(new.record.id)
        revoked_at = time.monotonic()
        time.sleep(poll)
        with pytest.raises(Unauthenticated, match="was revoked"):
            client.list_collections()
        assert time.monotonic() - revoked_at < poll + 5


def test_a_scope_missing_from_the_table_is_refused(
    sqlite_settings: Settings, encoder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(METHOD_SCOPES, "/assetsearch.v1.SearchService/ListCollections")
    srv = _start(sqlite_settings.model_copy(update={"auth": "required"}), encoder)
    try:
        with client_of(srv, new_key(srv, "admin")) as client:
            with pytest.raises(PermissionDenied, match="no scope defined"):
                client.list_collections()
            with pytest.raises(NotFound):  # every other call goes on as before
                client.get_asset(1)
    finally:
        srv.stop(grace=0)
        srv.catalog.close()


def test_health_is_open_and_reflection_needs_a_key_off_loopback(
    sqlite_settings: Settings, encoder: Any
) -> None:
    srv = _start(sqlite_settings.model_copy(update={"auth": None}), encoder, "0.0.0.0")
    try:
        key = new_key(srv, "read")
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            answer = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
            assert _reflect(channel, None) == grpc.StatusCode.UNAUTHENTICATED
            assert _reflect(channel, key) == grpc.StatusCode.OK
            search = pb.DESCRIPTOR.services_by_name["SearchService"]
            code, _ = call_status(channel, search, search.methods_by_name["ListCollections"])
            assert code == grpc.StatusCode.UNAUTHENTICATED  # 0.0.0.0: keys by default
    finally:
        srv.stop(grace=0)
        srv.catalog.close()


def test_reflection_is_open_on_loopback(secured: AssetSearchServer) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{secured.port}") as channel:
        assert _reflect(channel, None) == grpc.StatusCode.OK


def _reflect(channel: grpc.Channel, key: str | None) -> grpc.StatusCode:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    metadata = (("authorization", f"Bearer {key}"),) if key else ()
    ask = reflection_pb2.ServerReflectionRequest(list_services="")
    try:
        answers = list(stub.ServerReflectionInfo(iter([ask]), metadata=metadata, timeout=10))
    except grpc.RpcError as exc:
        return exc.code()
    names = {s.name for s in answers[0].list_services_response.service}
    assert "assetsearch.v1.SearchService" in names
    return grpc.StatusCode.OK


# -- the keys command -------------------------------------------------------------------


def test_keys_cli(secured: AssetSearchServer, capsys: pytest.CaptureFixture[str]) -> None:
    url = secured.settings.resolved_database_url()
    flags = ["--data-dir", str(secured.settings.data_dir), "--database-url", url]
    args = ["keys", "create", "--scope", "read", "--collection", "photos", "--name", "ci bot"]
    assert main([*args, *flags]) == 0
    out = capsys.readouterr().out
    key = out.split()[-1]
    assert "shown only this once" in out and parse_key(key) is not None
    with client_of(secured, key) as client:
        assert client.list_collections() == []  # works at once; limited to photos
        with pytest.raises(PermissionDenied):
            client.search(vector=vectors(1, 0)[0])

    assert main(["keys", "list", *flags]) == 0
    listing = capsys.readouterr().out
    secret = key.split("_", 2)[2]
    key_id = key.split("_")[1]
    assert key_id in listing and "ci bot" in listing and "photos" in listing
    assert secret not in listing
    assert main(["keys", "list", "--json", *flags]) == 0
    (row,) = [line for line in capsys.readouterr().out.splitlines() if key_id in line]
    assert secret not in row and '"scope": "read"' in row and '"revoked_at": null' in row

    assert main(["keys", "revoke", key_id, *flags]) == 0
    assert "revoked API key" in capsys.readouterr().out
    time.sleep(secured.settings.poll_interval)
    with client_of(secured, key) as client, pytest.raises(Unauthenticated, match="revoked"):
        client.list_collections()
    assert main(["keys", "list", *flags]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if key_id in line]
    assert not line.rstrip().endswith("-")  # the revoked column holds a time
    assert main(["keys", "revoke", "424242", *flags]) == 2
    assert "no API key" in capsys.readouterr().err


# -- the streaming kinds, on a server of stand-in servicers ----------------------------


class _Library(pb_grpc.LibraryServiceServicer):
    """Reads an upload to its end; answers with the collections the key may use."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def UpsertAsset(self, request_iterator: Any, context: Any) -> pb.UpsertAssetResponse:  # noqa: N802
        for message in request_iterator:
            self.seen.append(message.WhichOneof("part") or "")
        allowed = auth.allowed_collections()
        shown = ",".join(sorted(allowed)) if allowed is not None else "*"
        return pb.UpsertAssetResponse(asset=pb.Asset(collection=shown))


class _Jobs(pb_grpc.JobServiceServicer):
    """Streams three updates, each naming the calling key."""

    def WatchIndexJob(self, request: Any, context: Any) -> Iterator[pb.WatchIndexJobResponse]:  # noqa: N802
        for i in range(3):
            principal = auth.current_principal()
            assert principal is not None
            yield pb.WatchIndexJobResponse(job=pb.IndexJob(id=i, collection=principal.key_id))


def _stand_in(keys: auth.KeyCache, library: _Library) -> tuple[grpc.Server, int]:
    """A gRPC server of the stand-in servicers behind the auth interceptor alone."""
    from concurrent import futures

    interceptor = auth.AuthInterceptor(keys, "default")
    interceptor.configure(Settings(auth="required"), "127.0.0.1")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), interceptors=[interceptor])
    pb_grpc.add_LibraryServiceServicer_to_server(library, server)
    pb_grpc.add_JobServiceServicer_to_server(_Jobs(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def test_streaming_calls_carry_the_key_and_check_each_message(catalog: Catalog) -> None:
    library = _Library()
    keys = auth.KeyCache(catalog.keys.snapshot, catalog.keys.lookup, ttl=60.0)
    server, port = _stand_in(keys, library)
    try:
        limited = catalog.keys.create("write", ["photos", "video"])
        with SearchClient(f"127.0.0.1:{port}", timeout=10, api_key=limited.key) as client:
            done = client.upsert_asset(b"x" * 10, uri="a", collection="photos", chunk_size=4)
            assert done.asset.collection == "photos,video"
            assert library.seen == ["header", "chunk", "chunk", "chunk"]
            library.seen.clear()
            with pytest.raises(PermissionDenied, match="may not use collection 'default'"):
                client.upsert_asset(b"x" * 10, uri="a", chunk_size=4)
            assert library.seen == []  # refused at the header, before any chunk
            updates = list(client.watch_index_job(1))
            assert [u.collection for u in updates] == [limited.record.key_id] * 3
        with SearchClient(f"127.0.0.1:{port}", timeout=10) as anonymous:
            with pytest.raises(Unauthenticated):
                anonymous.upsert_asset(b"x", uri="a")
            with pytest.raises(Unauthenticated):
                list(anonymous.watch_index_job(1))
    finally:
        server.stop(0)


def test_an_unreachable_catalog_refuses_every_key() -> None:
    def down() -> dict[str, Any]:
        raise OSError("connection refused")

    server, port = _stand_in(auth.KeyCache(down, lambda _: None, ttl=60.0), _Library())
    try:
        key = "ask_AAAAAAAAAAAA_" + "s" * 43
        with SearchClient(f"127.0.0.1:{port}", timeout=10, api_key=key) as client:
            with pytest.raises(Unavailable, match="cannot check API keys"):
                client.upsert_asset(b"x", uri="a")
    finally:
        server.stop(0)
