"""A deleted or changed file leaves no stale hit: in a live server that tails the change log,
and in a server restarted from a snapshot taken before the change."""

from __future__ import annotations

import random
from pathlib import Path

import grpc
import pytest
from assetsearch_client import AssetSearchError, SearchClient
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb

from indexer.pipeline import Indexer
from latent.catalog import Catalog
from latent.models.encoders import Encoder
from latent.settings import Settings
from service.server import AssetSearchServer
from tests.durability import (
    COLLECTION,
    CatalogState,
    Library,
    check_live_index,
    check_server,
    read_catalog,
    run_seed,
    wait_caught_up,
)
from tests.running import running_server


def _index(settings: Settings, encoder: Encoder, lib: Library) -> CatalogState:
    catalog = Catalog(settings.resolved_database_url())
    try:
        Indexer(catalog, lambda spec: encoder, COLLECTION, encoder.spec, batch_size=8).run(
            [lib.root]
        )
    finally:
        catalog.close()
    return read_catalog(settings.resolved_database_url())


def _mutate(lib: Library) -> tuple[list[str], list[str]]:
    """Change a quarter of the files (one into undecodable bytes), delete another quarter."""
    names = sorted(lib.current)
    changed, deleted = names[: len(names) // 4], names[len(names) // 4 : len(names) // 2]
    for i, rel in enumerate(changed):
        lib.change(rel, broken=i == 0)
    for rel in deleted:
        lib.delete(rel)
    return [lib.uri(r) for r in changed], [lib.uri(r) for r in deleted]


def _check_in_process(srv: AssetSearchServer, cat: CatalogState) -> None:
    """The served generation holds exactly the catalog's embedding ids."""
    generation = srv.indexes.get(COLLECTION).generation
    ids = generation.index.ids().tolist()
    assert len(ids) == len(set(ids)) == len(generation.index)
    assert sorted(ids) == sorted(cat.embeddings)
    assert generation.seq == cat.head


def _check_deleted_assets(address: str, cat: CatalogState, deleted: list[str]) -> None:
    """A deleted asset is kept as a `deleted` row, and cannot seed a search."""
    with SearchClient(address) as client:
        for uri in deleted:
            asset_id = cat.assets[uri].id
            assert client.get_asset(asset_id).state == pb.Asset.State.STATE_DELETED
            with pytest.raises(AssetSearchError) as err:
                client.search(asset_id=asset_id, top_k=5)
            assert err.value.status == grpc.StatusCode.NOT_FOUND


def test_live_server_drops_changed_and_deleted_files(
    settings: Settings, encoder: Encoder, tmp_path: Path
) -> None:
    rng = random.Random(run_seed("no stale hit, live"))
    lib = Library(tmp_path / "library", rng)
    lib.add(40, broken=1)
    with running_server(settings, encoder) as srv:
        address = f"127.0.0.1:{srv.port}"
        cat = _index(settings, encoder, lib)
        check_server(address, cat, lib, rng, sample=40)
        changed, deleted = _mutate(lib)
        cat = _index(settings, encoder, lib)  # the server is tailing the log meanwhile
        assert {cat.assets[u].state for u in changed} == {"indexed", "failed"}
        check_server(address, cat, lib, rng, sample=40)
        _check_in_process(srv, cat)
        _check_deleted_assets(address, cat, deleted)


def test_restart_from_an_older_snapshot_drops_them_too(
    settings: Settings, encoder: Encoder, tmp_path: Path
) -> None:
    rng = random.Random(run_seed("no stale hit, restart"))
    lib = Library(tmp_path / "library", rng)
    lib.add(40, broken=1)
    with running_server(settings, encoder) as srv:
        before = _index(settings, encoder, lib)
        wait_caught_up(f"127.0.0.1:{srv.port}", before.head, before.dim)
    snapshots = settings.data_dir / "snapshots" / COLLECTION
    assert any(snapshots.glob("*.faiss")), "stopping the server writes a snapshot"
    changed, deleted = _mutate(lib)
    lib.add(5)
    cat = _index(settings, encoder, lib)  # no server running: the snapshot is now stale
    assert cat.head > before.head
    # Loading replays the log over the stale snapshot (the server below does the same).
    assert check_live_index(settings.resolved_database_url(), settings.data_dir, cat) == "snapshot"
    with running_server(settings, encoder) as srv:
        check_server(f"127.0.0.1:{srv.port}", cat, lib, rng, sample=45)
        _check_in_process(srv, cat)
        _check_deleted_assets(f"127.0.0.1:{srv.port}", cat, deleted)
