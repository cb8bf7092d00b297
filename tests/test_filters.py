"""Filtered search: the filter syntax, its SQL on both catalogs, and both search plans."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

import grpc
import numpy as np
import pytest
from assetsearch_client import SearchClient, terms
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latent.catalog import AssetRecord, AssetWrite, Catalog
from latent.catalog.where import where_clause
from latent.errors import InvalidArgument
from latent.query.filters import (
    MEDIA_TYPES,
    Filter,
    FilterSyntaxError,
    MetadataCondition,
    SizeRange,
    TimeRange,
    combine,
    parse_filter,
)
from service import engine as queries
from service.convert.filters import filter_message

DAY = 86_400 * 10**9
JAN_31 = 1_706_659_200 * 10**9  # 2024-01-31T00:00:00Z

# -- the syntax ---------------------------------------------------------------------------


def test_a_full_filter_parses_to_the_structure() -> None:
    text = (
        "media in (image, video) and uri^='file:///srv/my lib/' and size>=10KB and size<2MiB "
        "and mtime<=2024-01-31 and created>2024-01-01T12:00:00+01:00 and meta.tag=red and "
        "meta.n in (3, '3', true) and meta.objects.0.color not exists and meta.x != 1.5e1"
    )
    flt = parse_filter(text)
    assert flt.media_types == ("image", "video")
    assert flt.uri_prefix == "file:///srv/my lib/"
    assert flt.size == SizeRange(10_000, 2 * 2**20 - 1)
    assert flt.mtime == TimeRange(None, JAN_31 + DAY)  # the whole of Jan 31 included
    assert flt.created.start_ns == 1_704_106_800 * 10**9 + 1  # 11:00Z, strictly after
    assert flt.metadata == (
        MetadataCondition("tag", "eq", ("red",)),
        MetadataCondition("n", "in", (3.0, "3", True)),
        MetadataCondition("objects.0.color", "not_exists"),
        MetadataCondition("x", "ne", (15.0,)),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("media!=vector", Filter(media_types=("image", "video", "audio"))),
        ("size=5", Filter(size=SizeRange(5, 5))),
        ("size>5 and size<=7", Filter(size=SizeRange(6, 7))),
        ("mtime=2024-01-31", Filter(mtime=TimeRange(JAN_31, JAN_31 + DAY))),
        ("mtime<2024-01-31", Filter(mtime=TimeRange(None, JAN_31))),
        ("mtime>2024-01-31", Filter(mtime=TimeRange(JAN_31 + DAY, None))),
        ("MTIME >= 2024-01-31T00:00:00Z", None),  # fields are lower-case
        ("path^=/a/b", Filter(path_prefix="/a/b")),
        (
            "meta.tag exists AND meta.k='a b'",
            Filter(
                metadata=(
                    MetadataCondition("tag", "exists"),
                    MetadataCondition("k", "eq", ("a b",)),
                )
            ),
        ),
    ],
)
def test_clauses(text: str, expected: Filter | None) -> None:
    if expected is None:
        with pytest.raises(FilterSyntaxError):
            parse_filter(text)
        return
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("", 1, "empty"),
        ("colour=red", 1, "expected a field"),
        ("media=imgae", 7, "not a media type"),
        ("media in (image, video", 10, "never closed"),
        ("size>10XB", 6, "not a size"),
        ("size>1.5B", 6, "whole number"),
        ("size^=3", 5, "size takes"),
        ("mtime<2024-13-01", 7, "not a date"),
        ("meta.tag", 9, "meta takes"),
        ("meta.tag = 'red", 12, "unterminated"),
        ("meta.tag=red meta.x=1", 14, "expected 'and'"),
        ("media=image and", 16, "expected a field"),
        ("size>5 and size<3", 12, "nothing can match"),
        ("mtime>2024-02-01 and mtime<2024-01-01", 22, "nothing can match"),
        ("media=image and media=video", 17, "no media type"),
        ("path^=cats", 7, "not absolute"),
        ('meta.a"b=1', 1, "dotted key path"),
        ("meta.tag not 3", 14, "after 'not'"),
    ],
)
def test_syntax_errors_name_their_column(text: str, column: int, words: str) -> None:
    with pytest.raises(FilterSyntaxError) as err:
        parse_filter(text)
    assert err.value.column == column, str(err.value)
    assert words in str(err.value)
    assert isinstance(err.value, InvalidArgument)


def test_relative_paths_resolve_through_the_callback() -> None:
    flt = parse_filter("path^=cats/", lambda p: "/home/me/" + p)
    assert flt.path_prefix == "/home/me/cats/"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"media_types": ("picture",)}, "not a media type"),
        ({"path_prefix": "relative/dir"}, "absolute"),
        ({"size": SizeRange(5, 4)}, "greater than max"),
        ({"size": SizeRange(-1, None)}, "negative"),
        ({"updated": TimeRange(10, 10)}, "not before end"),
        ({"metadata": (MetadataCondition("a..b", "eq", ("x",)),)}, "dotted key path"),
        ({"metadata": (MetadataCondition("a", "eq", ()),)}, "takes one value"),
        ({"metadata": (MetadataCondition("a", "exists", ("x",)),)}, "takes no values"),
        ({"metadata": (MetadataCondition("a", "in", (float("nan"),)),)}, "finite"),
        ({"metadata": (MetadataCondition("a", "exists"),) * 33}, "at most 32"),
    ],
)
def test_invalid_filters_name_the_field(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        Filter(**kwargs)


def test_combine_means_all_must_hold() -> None:
    both = combine([parse_filter("media in (image, vector) and size>=3"), parse_filter("size<9")])
    assert both == Filter(media_types=("image", "vector"), size=SizeRange(3, 8))
    with pytest.raises(InvalidArgument, match="no media type"):
        combine([parse_filter("media=image"), parse_filter("media=video")])


def test_user_values_are_bound_never_spliced_into_sql(catalog: Catalog) -> None:
    nasty = "x'; DROP TABLE assets; --"
    flt = Filter(uri_prefix=nasty, metadata=(MetadataCondition("k", "eq", (nasty,)),))
    sql = str(
        where_clause(flt, catalog.engine.dialect.name).compile(dialect=catalog.engine.dialect)
    )
    assert "DROP" not in sql


def test_the_filter_model_and_syntax_load_no_sql() -> None:
    """Parsing and validating a filter (the CLI, the client side) never pulls in SQLAlchemy."""
    code = "import sys, latent.query.filters; assert 'sqlalchemy' not in sys.modules, 'loaded'"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=Path(__file__).parents[1], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


# -- the SQL on both catalogs, against a reference evaluation -------------------------------

METADATA = [
    {"tag": "red", "n": 3},
    {"tag": "Red", "n": 3.0},
    {"tag": "3", "n": "3"},
    {"n": 3.5, "flag": True},
    {"flag": False, "n": None},
    {"objects": [{"color": "red"}, {"color": "blue"}]},
    {"nested": {"k": 1}, "tag": 'it\'s "quoted"; DROP TABLE assets;--'},
    {},
]
URIS = [
    "file:///lib/a",
    "file:///lib/a/x.jpg",
    "file:///lib/ab/y.jpg",
    "file:///lib/a%20b/z.png",
    "vector:a",
    "vector:b",
    "file:///other/q.jpg",
    "file:///lib/a/deep/r.jpg",
]
MEDIA = ["image", "image", "video", "image", "vector", "vector", "audio", "image"]


@pytest.fixture
def varied(catalog: Catalog) -> list[AssetRecord]:
    """Eight assets that differ in every filterable fact."""
    col = catalog.ensure_collection("c", "spec", 4)
    vectors = np.eye(4, dtype=np.float32)
    writes = [
        AssetWrite(
            uri=URIS[i],
            media_type=MEDIA[i],
            size=i * 10,
            mtime_ns=1_000 + i,
            content_hash=None,
            metadata=METADATA[i],
            vectors=vectors[i % 4 : i % 4 + 1],
        )
        for i in range(8)
    ]
    ids = catalog.commit(col, writes)
    return [catalog.assets(ids)[i] for i in ids]


_MISSING = object()


def _lookup(metadata: Any, path: tuple[str | int, ...]) -> Any:
    value = metadata
    for part in path:
        if isinstance(part, int) and isinstance(value, list) and part < len(value):
            value = value[part]
        elif isinstance(part, str) and isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return _MISSING
    return value


def _same(stored: Any, wanted: Any) -> bool:
    if isinstance(wanted, bool) or isinstance(stored, bool):
        return type(stored) is type(wanted) and stored == wanted
    if isinstance(wanted, str) or isinstance(stored, str):
        return isinstance(stored, str) and isinstance(wanted, str) and stored == wanted
    return isinstance(stored, int | float) and float(stored) == float(wanted)


def _holds(c: MetadataCondition, metadata: dict[str, Any]) -> bool:
    value = _lookup(metadata, c.path)
    present = value is not _MISSING and value is not None
    if c.op in ("exists", "not_exists"):
        return present == (c.op == "exists")
    hit = value is not _MISSING and any(_same(value, v) for v in c.values)
    return hit == (c.op in ("eq", "in"))


def _ns(moment: dt.datetime) -> int:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def _in(ns: int, part: TimeRange) -> bool:
    return (part.start_ns is None or ns >= part.start_ns) and (
        part.end_ns is None or ns < part.end_ns
    )


def reference(flt: Filter, a: AssetRecord) -> bool:
    """What the filter means, evaluated in Python."""
    if flt.path_prefix:
        base = PurePosixPath(flt.path_prefix).as_uri()
        if not (a.uri == base or a.uri.startswith(base.rstrip("/") + "/")):
            return False
    return (
        (not flt.media_types or a.media_type in flt.media_types)
        and a.uri.startswith(flt.uri_prefix)
        and _in(a.mtime_ns, flt.mtime)
        and _in(_ns(a.created_at), flt.created)
        and _in(_ns(a.updated_at), flt.updated)
        and (flt.size.min is None or a.size >= flt.size.min)
        and (flt.size.max is None or a.size <= flt.size.max)
        and all(_holds(c, a.metadata) for c in flt.metadata)
    )


_values = st.sampled_from(["red", "Red", "3", "blue", 'it\'s "quoted"; DROP TABLE assets;--'])
_scalars = _values | st.sampled_from([3.0, 3.5, 0.0, 1.0]) | st.booleans()
_keys = st.sampled_from(["tag", "n", "flag", "objects.0.color", "objects.1.color", "nested.k"])


@st.composite
def _conditions(draw: st.DrawFn) -> MetadataCondition:
    op = draw(st.sampled_from(["eq", "ne", "in", "not_in", "exists", "not_exists"]))
    fixed = {"eq": 1, "ne": 1, "exists": 0, "not_exists": 0}
    count = fixed[op] if op in fixed else draw(st.integers(1, 3))
    return MetadataCondition(
        draw(_keys | st.just("missing")), op, tuple(draw(_scalars) for _ in range(count))
    )


@st.composite
def _ranges(draw: st.DrawFn, low: int, high: int) -> tuple[int | None, int | None]:
    a, b = draw(st.none() | st.integers(low, high)), draw(st.none() | st.integers(low, high))
    if a is not None and b is not None and a > b:
        a, b = b, a
    return a, b


@st.composite
def _filters(draw: st.DrawFn) -> Filter:
    size = draw(_ranges(0, 80))
    start, end = draw(_ranges(990, 1010))
    return Filter(
        media_types=tuple(draw(st.lists(st.sampled_from(MEDIA_TYPES), unique=True, max_size=2))),
        uri_prefix=draw(st.sampled_from(["", "file:///lib/a", "vector:", "file:///lib/a%"])),
        path_prefix=draw(st.sampled_from(["", "/lib/a", "/lib", "/", "/lib/a b"])),
        size=SizeRange(*size),
        mtime=TimeRange(start, end + 1 if end is not None and end == start else end),
        metadata=tuple(draw(st.lists(_conditions(), max_size=3))),
    )


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(flt=_filters())
def test_sql_matches_the_reference_on_both_catalogs(
    catalog: Catalog, varied: list[AssetRecord], flt: Filter
) -> None:
    col = catalog.collection("c")
    expected = {a.id for a in varied if reference(flt, a)}
    ids = catalog.matching_ids(col, flt)
    got = {owner for owner in catalog.searchable(ids.tolist(), flt).values()}
    assert got == expected
    assert len(ids) == len(expected)  # one vector per asset


@pytest.mark.parametrize(
    ("text", "uris"),
    [
        ("meta.n=3", ["file:///lib/a", "file:///lib/a/x.jpg"]),  # 3 == 3.0, not "3"
        ("meta.n='3'", ["file:///lib/ab/y.jpg"]),
        ("meta.tag=red", ["file:///lib/a"]),  # case-sensitive
        ("meta.flag=false", ["vector:a"]),
        ("meta.n exists", URIS[:4]),  # null counts as absent
        ("meta.objects.1.color=blue", ["vector:b"]),
        ("path^=/lib/a", ["file:///lib/a", "file:///lib/a/x.jpg", "file:///lib/a/deep/r.jpg"]),
        ("path^='/lib/a b'", ["file:///lib/a%20b/z.png"]),
        ("uri^=file:///lib/a", [u for u in URIS if u.startswith("file:///lib/a")]),
        ("media=vector and meta.tag not exists", ["vector:a", "vector:b"]),
    ],
)
def test_examples_a_user_would_write(
    catalog: Catalog, varied: list[AssetRecord], text: str, uris: list[str]
) -> None:
    col = catalog.collection("c")
    flt = parse_filter(text)
    ids = catalog.matching_ids(col, flt).tolist()
    got = {catalog.asset(a).uri for a in catalog.searchable(ids, flt).values()}
    assert got == set(uris)


def test_created_and_updated_ranges_are_exact_at_the_boundary(
    catalog: Catalog, varied: list[AssetRecord]
) -> None:
    col = catalog.collection("c")
    first = min(_ns(a.created_at) for a in varied)
    last = max(_ns(a.updated_at) for a in varied)
    everyone = len(varied)
    assert len(catalog.matching_ids(col, Filter(created=TimeRange(first, None)))) == everyone
    assert len(catalog.matching_ids(col, Filter(created=TimeRange(None, first)))) == 0
    assert len(catalog.matching_ids(col, Filter(updated=TimeRange(None, last + 1)))) == everyone
    assert len(catalog.matching_ids(col, Filter(updated=TimeRange(last + 1, None)))) == 0


# -- filtered search through the server: both plans, exact top-k --------------------------


def _brute_force(catalog: Catalog, name: str, query: np.ndarray, flt: Filter | None) -> dict:
    """Asset id -> cosine of every searchable asset matching the filter."""
    col = catalog.collection(name)
    allowed = set(catalog.matching_ids(col, flt).tolist())
    out = {}
    for ids, vectors in catalog.all_vectors(col):
        owners = catalog.searchable(ids.tolist())
        for e, v in zip(ids.tolist(), vectors, strict=True):
            if e in allowed:
                out[owners[e]] = float(v @ (query / np.linalg.norm(query)))
    return out


def _file(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


def assert_filtered_top_k(hits: Any, oracle: dict[int, float], k: int) -> None:
    """Hits are the k best matching assets (up to float ties), best first, each once."""
    ids = [h.asset_id for h in hits]
    assert len(ids) == min(k, len(oracle)) and len(set(ids)) == len(ids)
    assert set(ids) <= set(oracle)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    for h in hits:
        assert h.score == pytest.approx(oracle[h.asset_id], abs=1e-4)
    if len(oracle) > k:
        kth = sorted(oracle.values(), reverse=True)[k - 1]
        assert min(scores) >= kth - 1e-4


@pytest.fixture
def imported(server, client: SearchClient) -> np.ndarray:
    """400 random 32-d vectors in collection 'vec' with metadata: group i % 10, parity."""
    vectors = np.random.default_rng(7).standard_normal((400, 32)).astype(np.float32)
    metadata = [{"group": i % 10, "odd": bool(i % 2), "name": f"n{i}"} for i in range(400)]
    client.import_vectors(
        [str(i) for i in range(400)], vectors, collection="vec", metadata=metadata
    )
    server.indexes.sync()
    return vectors


@pytest.fixture(params=["prefilter", "postfilter"])
def plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Force one search plan: FAISS id selector, or over-fetch and post-filter."""
    if request.param == "prefilter":
        monkeypatch.setattr(queries, "PREFILTER_MIN", 10**9)
    else:
        monkeypatch.setattr(queries, "PREFILTER_MIN", 0)
        monkeypatch.setattr(queries, "PREFILTER_BALANCE", 0.0)
    return str(request.param)


@pytest.mark.parametrize(
    "text", ["meta.group=3", "meta.group in (1, 2, 5) and meta.odd=true", "meta.name='n17'"]
)
def test_filtered_search_equals_brute_force(
    server, client: SearchClient, imported: np.ndarray, plan: str, text: str
) -> None:
    flt = parse_filter(text)
    for q in range(3):
        query = imported[q * 50] + 0.3 * imported[q * 50 + 1]
        oracle = _brute_force(server.catalog, "vec", query, flt)
        for k in (1, 10, 45):
            hits = client.search(
                vector=query, collection="vec", top_k=k, filter=filter_message(flt)
            ).hits
            assert_filtered_top_k(hits, oracle, k)


def test_top_k_even_when_the_matches_are_the_farthest(
    server, client: SearchClient, imported: np.ndarray, plan: str
) -> None:
    query = imported[0]
    scores = imported @ query
    far = [int(i) for i in np.argsort(scores)[:12]]  # the 12 least similar rows
    flt = Filter(metadata=(MetadataCondition("name", "in", tuple(f"n{i}" for i in far)),))
    hits = client.search(vector=query, collection="vec", top_k=10, filter=filter_message(flt)).hits
    assert len(hits) == 10
    assert_filtered_top_k(hits, _brute_force(server.catalog, "vec", query, flt), 10)


def test_a_filter_nothing_matches_returns_no_hits(
    client: SearchClient, imported: np.ndarray
) -> None:
    flt = parse_filter("meta.group=99")
    assert (
        list(client.search(vector=imported[0], collection="vec", filter=filter_message(flt)).hits)
        == []
    )


def test_walks_respect_the_filter(client: SearchClient, imported: np.ndarray) -> None:
    flt = parse_filter("meta.odd=false")
    source = [terms.Vector(tuple(imported[0].tolist()))]
    target = [terms.Vector(tuple(imported[1].tolist()))]
    steps = list(
        client.interpolate(
            source, target, steps=4, top_k=6, collection="vec", filter=filter_message(flt)
        )
    )
    assert len(steps) == 4
    for step in steps:
        assert len(step.hits) == 6
        assert all(h.metadata["odd"] is False for h in step.hits)


@pytest.mark.parametrize(
    ("message", "words"),
    [
        (pb.Filter(media_types=["imgae"]), "filter.media_types"),
        (pb.Filter(path_prefix="relative"), "filter.path_prefix"),
        (pb.Filter(metadata=[pb.MetadataCondition(key="tag")]), "set op"),
        (
            pb.Filter(
                metadata=[
                    pb.MetadataCondition(
                        key="t", op=pb.MetadataCondition.OP_EQUALS, values=[pb.MetadataValue()]
                    )
                ]
            ),
            "a value is empty",
        ),
        (pb.Filter(size=pb.SizeRange(min=9, max=2)), "filter.size"),
    ],
)
def test_invalid_filter_messages_are_invalid_argument(
    server, imported: np.ndarray, message: pb.Filter, words: str
) -> None:
    from assetsearch_client._pb.assetsearch.v1 import search_pb2_grpc as pb_grpc

    request = pb.SearchRequest(
        collection="vec",
        query=pb.QueryTerm(vector=pb.Vector(values=imported[0].tolist())),
        filter=message,
    )
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        with pytest.raises(grpc.RpcError) as err:
            pb_grpc.SearchServiceStub(channel).Search(request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in err.value.details()


def test_path_size_and_media_filters_on_an_indexed_library(
    server, client: SearchClient, encoder, library: Path
) -> None:
    from indexer.pipeline import Indexer

    Indexer(server.catalog, lambda spec: encoder, "default", encoder.spec).run([library])
    server.indexes.sync()
    folder = library / "set1"
    inside = {p.as_uri() for p in folder.rglob("*.*")}
    flt = Filter(path_prefix=str(folder), media_types=("image",))
    hits = client.search(text="a red circle", top_k=50, filter=filter_message(flt)).hits
    assert {h.uri for h in hits} == inside and len(inside) == 8
    sizes = sorted(p.stat().st_size for p in library.rglob("*.*"))
    cut = sizes[5]
    hits = client.search(
        text="x", top_k=50, filter=filter_message(Filter(size=SizeRange(None, cut)))
    ).hits
    assert sorted(_file(h.uri).stat().st_size for h in hits) == [s for s in sizes if s <= cut]
    none = client.search(
        text="x", top_k=50, filter=filter_message(Filter(media_types=("video",)))
    ).hits
    assert list(none) == []
