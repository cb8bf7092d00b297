"""Cursor pagination of Search: every hit once, in score order, bound to its query."""

from __future__ import annotations

import base64
import json

import grpc
import numpy as np
import pytest
from assetsearch_client import AssetSearchError, SearchClient

from latent.query.filters import Filter, MetadataCondition, parse_filter
from service import engine as query_engine
from service import paging
from service.convert.filters import filter_message
from service.engine import QueryEngine
from tests.test_filters import _brute_force


@pytest.fixture
def vectors(server, client: SearchClient) -> np.ndarray:
    """120 random 16-d vectors in collection 'pages', with 6 exact duplicate pairs (ties)."""
    rng = np.random.default_rng(3)
    base = rng.standard_normal((114, 16)).astype(np.float32)
    data = np.concatenate([base, base[:6]])  # rows 114..119 repeat rows 0..5: equal scores
    metadata = [{"group": i % 4} for i in range(len(data))]
    client.import_vectors(
        [f"v{i}" for i in range(len(data))], data, collection="pages", metadata=metadata
    )
    server.indexes.sync()
    return data


def walk(client: SearchClient, query: np.ndarray, page_size: int, **kwargs) -> list:
    """Every page of one search, followed by next_page_token until it is empty."""
    pages, token = [], ""
    while True:
        response = client.search(
            vector=query, collection="pages", top_k=page_size, page_token=token, **kwargs
        )
        assert response.offset == sum(len(p) for p in pages)
        assert not response.collection_changed
        pages.append(list(response.hits))
        token = response.next_page_token
        if not token:
            return pages
        assert len(pages) < 1000


@pytest.mark.parametrize("where", [None, "meta.group=1", "meta.group in (0, 2, 3)"])
@pytest.mark.parametrize("plan", ["prefilter", "postfilter"])
def test_walking_all_pages_yields_every_match_once_in_score_order(
    server,
    client: SearchClient,
    vectors: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
    where: str | None,
    plan: str,
) -> None:
    if plan == "postfilter":
        monkeypatch.setattr(query_engine, "PREFILTER_MIN", 0)
        monkeypatch.setattr(query_engine, "PREFILTER_BALANCE", 0.0)
    flt = parse_filter(where) if where else None
    query = vectors[0] + 0.5 * vectors[1]
    oracle = _brute_force(server.catalog, "pages", query, flt)
    pages = walk(client, query, 7, filter=filter_message(flt) if flt else None)
    hits = [h for page in pages for h in page]
    ids = [h.asset_id for h in hits]
    assert len(ids) == len(set(ids)) == len(oracle)  # no repeats, no gaps
    assert set(ids) == set(oracle)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(len(p) == 7 for p in pages[:-1]) and 1 <= len(pages[-1]) <= 7
    first = client.search(
        vector=query,
        collection="pages",
        top_k=len(oracle),
        filter=filter_message(flt) if flt else None,
    )
    assert [h.asset_id for h in first.hits] == ids  # pages continue one ranking


def test_the_page_size_may_change_between_pages(client: SearchClient, vectors: np.ndarray) -> None:
    query = vectors[5]
    all_at_once = [
        h.asset_id for h in client.search(vector=query, collection="pages", top_k=30).hits
    ]
    first = client.search(vector=query, collection="pages", top_k=10)
    second = client.search(
        vector=query, collection="pages", top_k=20, page_token=first.next_page_token
    )
    assert second.offset == 10
    assert [h.asset_id for h in [*first.hits, *second.hits]] == all_at_once


def test_the_last_page_has_no_token(client: SearchClient, vectors: np.ndarray) -> None:
    response = client.search(vector=vectors[0], collection="pages", top_k=len(vectors))
    assert len(response.hits) == len(vectors) and response.next_page_token == ""
    exact = client.search(vector=vectors[0], collection="pages", top_k=len(vectors) - 1)
    assert exact.next_page_token  # one more remains


def test_diversified_pages_continue_one_sequence(client: SearchClient, vectors: np.ndarray) -> None:
    query = vectors[9]
    pages = walk(client, query, 5, diversity=0.5)
    ids = [h.asset_id for page in pages for h in page]
    assert len(ids) == len(set(ids)) == 20  # the pool of the first page: 4 x top_k
    again = walk(client, query, 5, diversity=0.5)
    assert [h.asset_id for page in again for h in page] == ids


@pytest.mark.parametrize(
    "change",
    [
        {"vector": "other"},
        {"filter": filter_message(Filter(metadata=(MetadataCondition("group", "eq", (1.0,)),)))},
        {"collection": "default"},
        {"diversity": 0.3},
    ],
)
def test_a_token_of_another_query_is_invalid_argument(
    server, client: SearchClient, vectors: np.ndarray, change: dict
) -> None:
    if change.get("collection") == "default":
        client.import_vectors(["x"], vectors[:1], collection="default")
        server.indexes.sync()
    token = client.search(vector=vectors[0], collection="pages", top_k=5).next_page_token
    kwargs = {"vector": vectors[0], "collection": "pages", "top_k": 5, **change}
    if change.get("vector") == "other":
        kwargs["vector"] = vectors[1]
    with pytest.raises(AssetSearchError) as err:
        client.search(page_token=token, **kwargs)
    assert err.value.status == grpc.StatusCode.INVALID_ARGUMENT
    assert "another query" in str(err.value)


@pytest.mark.parametrize(
    "token",
    [
        "not base64 !!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(json.dumps({"v": 1, "f": "x", "o": -5, "s": 0}).encode()).decode(),
        "A" * 600,
    ],
)
def test_a_malformed_token_is_invalid_argument(
    client: SearchClient, vectors: np.ndarray, token: str
) -> None:
    with pytest.raises(AssetSearchError) as err:
        client.search(vector=vectors[0], collection="pages", page_token=token)
    assert err.value.status == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in str(err.value)


def test_a_changed_collection_is_reported_and_paging_goes_on(
    server, client: SearchClient, vectors: np.ndarray
) -> None:
    first = client.search(vector=vectors[0], collection="pages", top_k=10)
    client.import_vectors(["late"], vectors[:1] * 2, collection="pages")
    server.indexes.sync()
    second = client.search(
        vector=vectors[0], collection="pages", top_k=10, page_token=first.next_page_token
    )
    assert second.collection_changed and second.index_seq > first.index_seq
    assert second.offset == 10 and len(second.hits) == 10


def test_deep_pages_stop_at_the_depth_limit(
    client: SearchClient, vectors: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging, "MAX_PAGE_DEPTH", 25)
    pages = walk(client, vectors[0], 10)
    assert [len(p) for p in pages] == [10, 10, 10]  # no token is issued past depth 25


def test_the_planner_picks_the_id_selector_only_for_selective_filters(
    server, settings, vectors: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(query_engine, "PREFILTER_MIN", 0)
    engine = QueryEngine(settings, server.catalog, server.indexes, server.encoders)
    live = server.indexes.get("pages")
    one = engine.scope(live, live.generation, parse_filter("meta.group=1 and media=vector"), 2)
    assert one.matches == 30 and one.allowed is not None and len(one.allowed) == 30
    broad = engine.scope(live, live.generation, parse_filter("meta.group!=1"), 2)
    assert broad.allowed is None  # 90 match: 90**2 > 4 * 2 * 120 >= 30**2
    assert engine.scope(live, live.generation, None, 10).where is None
