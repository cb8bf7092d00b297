"""The query-embedding cache: through the real server (hits, identical results, bound, off)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from assetsearch_client import SearchClient
from PIL import Image

from indexer.pipeline import Indexer
from latent.catalog import Catalog
from latent.models.encoders import Encoder, EncoderCache
from latent.query.terms import Asset, Text
from latent.query.terms import Image as ImageTerm
from latent.settings import Settings
from service.query_cache import QueryCache, term_key
from service.server import AssetSearchServer


class CountingEncoder:
    """The real encoder, counting the texts and images it is asked to embed."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.spec = inner.spec
        self.dim = inner.dim
        self.texts = 0
        self.images = 0

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.encode_texts(texts)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.images += len(images)
        return self.inner.encode_images(images)


@pytest.fixture
def indexed(settings: Settings, encoder: Encoder, library: Path) -> Settings:
    """The settings, with the library indexed into their catalog."""
    catalog = Catalog(settings.resolved_database_url())
    Indexer(catalog, lambda spec: encoder, "default", encoder.spec).run([library])
    catalog.close()
    return settings


@contextmanager
def serve(
    settings: Settings, encoder: Encoder, cache_size: int, name: str = "srv"
) -> Iterator[tuple[SearchClient, CountingEncoder]]:
    """A real server with a counting encoder and the given cache size, and its client."""
    counting = CountingEncoder(encoder)
    encoders = EncoderCache()
    encoders.put(counting)
    own = settings.model_copy(
        update={"query_cache_size": cache_size, "data_dir": settings.data_dir / name}
    )
    server = AssetSearchServer(own, Catalog(own.resolved_database_url()), encoders)
    server.start(host="127.0.0.1", port=0)
    try:
        with SearchClient(f"127.0.0.1:{server.port}") as client:
            yield client, counting
    finally:
        server.stop(grace=0)
        server.catalog.close()


def ranking(client: SearchClient, **query: object) -> list[tuple[int, float]]:
    """The (asset id, score) hits of one search."""
    return [(h.asset_id, h.score) for h in client.search(top_k=8, **query).hits]  # type: ignore[arg-type]


def test_a_repeated_query_is_served_from_the_cache(
    indexed: Settings, encoder: Encoder, library: Path
) -> None:
    image = next(library.rglob("*.png")).read_bytes()
    with serve(indexed, encoder, cache_size=16) as (client, counting):
        first = ranking(client, text="a red circle")
        assert ranking(client, text="a red circle") == first
        assert ranking(client, expression='"a red circle" - 0.5 * "a red circle"') == first
        assert counting.texts == 1
        by_image = ranking(client, image=image)
        assert ranking(client, image=image) == by_image
        assert counting.images == 1
        ranking(client, text="a red circle ")  # exact text: another key
        assert counting.texts == 2


def test_results_are_the_same_with_and_without_the_cache(
    indexed: Settings, encoder: Encoder, library: Path
) -> None:
    image = next(library.rglob("*.jpg")).read_bytes()
    queries: list[dict[str, object]] = [
        {"text": "a blue square"},
        {"image": image},
        {"expression": '"a blue square" + 2 * "grass" - "sky"'},
        {"text": "a blue square"},
    ]
    with serve(indexed, encoder, cache_size=0, name="off") as (client, _):
        without = [ranking(client, **q) for q in queries]
    with serve(indexed, encoder, cache_size=64, name="on") as (client, _):
        cold = [ranking(client, **q) for q in queries]
        warm = [ranking(client, **q) for q in queries]
    assert cold == without and warm == without


def test_the_bound_holds_least_recently_used_first(indexed: Settings, encoder: Encoder) -> None:
    with serve(indexed, encoder, cache_size=2) as (client, counting):
        for text in ("a", "b", "a", "c"):  # "a" was used after "b": "b" goes
            ranking(client, text=text)
        assert counting.texts == 3
        ranking(client, text="a")
        ranking(client, text="c")
        assert counting.texts == 3
        ranking(client, text="b")
        assert counting.texts == 4


def test_size_zero_disables_the_cache(indexed: Settings, encoder: Encoder) -> None:
    with serve(indexed, encoder, cache_size=0) as (client, counting):
        for _ in range(3):
            ranking(client, text="a red circle")
        assert counting.texts == 3


def test_keys_are_per_model_and_exact() -> None:
    assert term_key("m1", Text("red")) != term_key("m2", Text("red"))
    assert term_key("m1", Text("red")) != term_key("m1", Text("Red"))
    assert term_key("m1", ImageTerm(b"\x89PNG1")) != term_key("m1", ImageTerm(b"\x89PNG2"))
    assert term_key("m1", Text("red")) == term_key("m1", Text("red", weight=2.0))
    assert term_key("m1", Asset(3)) is None


def test_cached_vectors_cannot_be_changed_by_a_caller() -> None:
    cache = QueryCache(4)
    key = term_key("m", Text("x"))
    source = np.ones(3, dtype=np.float32)
    first = cache.get_or_embed(key, lambda: source)
    source[:] = 5  # the embedder's own array is not what the cache holds
    with pytest.raises(ValueError, match="read-only"):
        first[0] = 7
    again = cache.get_or_embed(key, lambda: np.zeros(3, dtype=np.float32))
    np.testing.assert_array_equal(again, np.ones(3))
    assert (cache.hits, cache.misses) == (1, 1)


def test_concurrent_use_keeps_the_bound_and_the_values() -> None:
    cache = QueryCache(8)
    errors: list[str] = []

    def work(worker: int) -> None:
        for i in range(300):
            n = (i * 7 + worker) % 20
            got = cache.get_or_embed(term_key("m", Text(str(n))), lambda n=n: np.full(2, n, "f4"))
            if got[0] != n:
                errors.append(f"{n}: {got}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(cache) == 8
    assert cache.hits + cache.misses == 8 * 300
