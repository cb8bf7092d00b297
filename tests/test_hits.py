"""The service's cache of hit rows: exact as of the change log, on both catalogs."""

from __future__ import annotations

import numpy as np
from assetsearch_client import SearchClient

from latent.catalog import AssetWrite, Catalog
from service.hits import HitCache


def _vectors(n: int, dim: int = 64) -> np.ndarray:
    v = np.random.default_rng(7).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_metadata_changed_in_the_catalog_reaches_hits_served_from_the_cache(
    server, client: SearchClient
) -> None:
    catalog: Catalog = server.catalog
    vectors = _vectors(3)
    col = catalog.ensure_collection("meta", "external:test", vectors.shape[1])
    writes = [
        AssetWrite(
            f"vector:{i}", "vector", 0, 0, None, vectors=vectors[i : i + 1], metadata={"tag": "old"}
        )
        for i in range(3)
    ]
    first, *_ = catalog.commit(col, writes)
    server.indexes.sync()
    hits = client.search(vector=vectors[0], collection="meta", top_k=1).hits
    assert hits[0].asset_id == first and hits[0].metadata["tag"] == "old"
    assert len(server.indexes.hits) >= 1  # served from the cache from now on

    catalog.set_metadata({first: {"tag": "new"}})
    server.indexes.sync()
    hits = client.search(vector=vectors[0], collection="meta", top_k=1).hits
    assert hits[0].metadata["tag"] == "new"


def test_a_read_that_raced_an_eviction_is_not_cached(catalog: Catalog) -> None:
    vectors = _vectors(2, 8)
    col = catalog.ensure_collection("c", "external:test", 8)
    catalog.commit(
        col,
        [
            AssetWrite(f"vector:{i}", "vector", 0, 0, None, vectors=vectors[i : i + 1])
            for i in range(2)
        ],
    )
    ids = catalog.changes_since(col, 0).added_ids
    cache = HitCache(catalog)

    class Racing:
        """hits_for_embeddings, with an eviction landing while the query runs."""

        def hits_for_embeddings(self, embedding_ids):  # noqa: ANN001, ANN201
            rows = catalog.hits_for_embeddings(embedding_ids)
            cache.evict(ids[:1])
            return rows

    cache.catalog = Racing()  # type: ignore[assignment]
    assert set(cache.get(ids.tolist())) == set(ids.tolist())
    assert len(cache) == 0  # what was read may predate the change: not kept
    cache.catalog = catalog
    cache.get(ids.tolist())
    assert len(cache) == 2
    cache.evict(ids[:1])
    assert len(cache) == 1


def test_capacity_drops_the_oldest_rows(catalog: Catalog) -> None:
    vectors = _vectors(5, 8)
    col = catalog.ensure_collection("c", "external:test", 8)
    catalog.commit(
        col,
        [
            AssetWrite(f"vector:{i}", "vector", 0, 0, None, vectors=vectors[i : i + 1])
            for i in range(5)
        ],
    )
    ids = catalog.changes_since(col, 0).added_ids.tolist()
    cache = HitCache(catalog, capacity=3)
    for i in ids:
        cache.get([i])
    assert len(cache) == 3
    assert cache.get(ids)[ids[0]][0].uri == "vector:0"  # a dropped row is read again
