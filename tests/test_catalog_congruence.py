"""Congruence: one random run of catalog calls on SQLite and PostgreSQL, same answers each step.

In the manner of qdrant-client's ``tests/congruence_tests``: each step is applied to both
catalogs, its result (or error) must agree, and so must everything a reader can see
afterwards: collections and counts, file states, asset rows, the raw change log and its
folded batches, stored vectors, filtered ids, hits, directions and index options. Only
timestamps are left out: they record when each backend ran the step.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from latent.catalog import AssetWrite, Catalog, DirectionRecord, import_collection
from latent.catalog.schema import Change
from latent.errors import AssetSearchError
from latent.query.filters import Filter, MetadataCondition, SizeRange

pytestmark = pytest.mark.postgres

SEEDS = (0, 1)
STEPS = 30
DEEP_EVERY = 5  # steps between the costlier checks (each asset's vector)
COLLECTIONS = {"alpha": ("spec-a", 4), "beta": ("spec-b", 6)}
URIS = [f"file:///lib/{d}/f{i}.jpg" for d in ("a", "b") for i in range(6)]
EXTERNAL_IDS = [f"x{i}" for i in range(8)]
DIRECTIONS = ("up", "left", "smile")
TAGS = ("red", "blue", "Red", "3")
MAX_ASSET_ID = 120  # above any id a run creates: every asset is read back

Step = Callable[[Catalog], Any]


@pytest.fixture
def pair(database_url: str, tmp_path: Path) -> Iterator[tuple[Catalog, Catalog]]:
    """A fresh SQLite catalog and a fresh PostgreSQL catalog (conftest's database)."""
    lite, pg = Catalog(f"sqlite:///{tmp_path / 'lite.sqlite3'}"), Catalog(database_url)
    yield lite, pg
    lite.close()
    pg.close()


# -- random operations ---------------------------------------------------------------------


def _metadata(rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rng.random() < 0.6:
        out["tag"] = rng.choice(TAGS)
    if rng.random() < 0.5:
        out["n"] = rng.choice([3, 3.0, 3.5, "3", None, 0])
    if rng.random() < 0.3:
        out["flag"] = rng.random() < 0.5
    if rng.random() < 0.3:
        out["objects"] = [{"color": rng.choice(TAGS)} for _ in range(rng.randint(1, 2))]
    return out


def _vectors(rng: random.Random, rows: int, dim: int) -> np.ndarray:
    gen = np.random.default_rng(rng.randrange(2**32))
    return gen.standard_normal((rows, dim)).astype(np.float32)


def _write(rng: random.Random, dim: int) -> AssetWrite:
    uri = rng.choice(URIS)
    common: dict[str, Any] = dict(
        uri=uri,
        size=rng.randrange(0, 100),
        mtime_ns=rng.randrange(1, 10**6),
        content_hash=rng.choice([None, f"h{rng.randrange(5)}"]),
        metadata=_metadata(rng),
    )
    roll = rng.random()
    if roll < 0.15:
        return AssetWrite(media_type="image", state="failed", error="cannot decode", **common)
    if roll < 0.35:
        segments = rng.randint(1, 3)
        bounds = [(float(i), float(i + 1)) for i in range(segments)]
        vectors = _vectors(rng, segments, dim)
        return AssetWrite(media_type="video", vectors=vectors, segments=bounds, **common)
    media = rng.choice(["image", "audio"])
    return AssetWrite(media_type=media, width=8, height=6, vectors=_vectors(rng, 1, dim), **common)


def _commit(rng: random.Random, name: str, dim: int) -> tuple[str, Step]:
    writes = [_write(rng, dim) for _ in range(rng.randint(0, 4))]
    if writes and rng.random() < 0.05:  # a wrong dimension: refused, nothing written
        writes[-1].vectors = _vectors(rng, 1, dim + 1)
    deletes = rng.sample(URIS, rng.randint(0, 2))
    return f"commit {name} {[w.uri for w in writes]} -{deletes}", lambda c: c.commit(
        c.collection(name), writes, deletes
    )


def _import(rng: random.Random, name: str, dim: int) -> tuple[str, Step]:
    ids = rng.sample(EXTERNAL_IDS, rng.randint(1, 4))
    if rng.random() < 0.1:
        ids.append(ids[0])  # a repeated id: the whole batch is refused
    vectors = _vectors(rng, len(ids), dim)
    metadata = None if rng.random() < 0.4 else [rng.choice([None, _metadata(rng)]) for _ in ids]

    def run(c: Catalog) -> Any:
        return asdict(c.import_vectors(import_collection(c, name, "", dim), ids, vectors, metadata))

    return f"import {name} {ids}", run


def _save_direction(rng: random.Random, name: str, dim: int) -> tuple[str, Step]:
    record = DirectionRecord(
        name=rng.choice(DIRECTIONS),
        vector=_vectors(rng, 1, dim)[0],
        norm=rng.random(),
        examples={"positive": [rng.randrange(50)], "negative": []},
        orthogonal_to=tuple(rng.sample(DIRECTIONS, rng.randint(0, 1))),
    )
    return f"save direction {name} {record.name}", lambda c: _direction(
        c.save_direction(c.collection(name), record)
    )


def _step(rng: random.Random) -> tuple[str, Step]:
    """One random call, the same for both catalogs (drawn before either runs it)."""
    name = rng.choice(list(COLLECTIONS))
    spec, dim = COLLECTIONS[name]
    kind = rng.choices(
        ["ensure", "commit", "touch", "meta", "import", "save", "delete", "options"],
        weights=[1, 6, 1, 1, 2, 1, 1, 1],
    )[0]
    if kind == "ensure":
        wrong = rng.random() < 0.2  # another model: refused (one model per collection)
        model = "spec-other" if wrong else spec
        return f"ensure {name} {model}", lambda c: c.ensure_collection(name, model, dim)
    if kind == "commit":
        return _commit(rng, name, dim)
    if kind == "touch":
        uri, mtime = rng.choice(URIS), rng.randrange(1, 10**6)
        return f"touch {name} {uri}", lambda c: c.touch(c.collection(name).id, uri, mtime)
    if kind == "meta":
        changes = {rng.randrange(1, 40): _metadata(rng) for _ in range(rng.randint(1, 3))}
        return f"set_metadata {sorted(changes)}", lambda c: c.set_metadata(changes)
    if kind == "import":
        return _import(rng, name, dim)
    if kind == "save":
        return _save_direction(rng, name, dim)
    if kind == "delete":
        gone = rng.choice(DIRECTIONS)
        return f"delete direction {name} {gone}", lambda c: c.delete_direction(
            c.collection(name), gone
        )
    options = rng.choice([None, {"kind": "flat"}, {"kind": "hnsw", "m": rng.randint(4, 32)}])
    target = rng.choice([name, name, "missing"])
    return f"set_index_options {target} {options}", lambda c: c.set_index_options(target, options)


def _filter(rng: random.Random) -> Filter:
    conditions = []
    for _ in range(rng.randint(0, 2)):
        key = rng.choice(["tag", "n", "flag", "objects.0.color", "missing"])
        op = rng.choice(["eq", "ne", "in", "not_in", "exists", "not_exists"])
        pool = [*TAGS, 3.0, 3.5, 0.0, True, False]
        count = {"eq": 1, "ne": 1, "exists": 0, "not_exists": 0}.get(op, rng.randint(1, 3))
        conditions.append(MetadataCondition(key, op, tuple(rng.sample(pool, count))))  # type: ignore[arg-type]
    low = rng.choice([None, rng.randrange(0, 60)])
    high = rng.choice([None, rng.randrange(60, 100)])
    return Filter(
        media_types=tuple(rng.sample(["image", "video", "audio", "vector"], rng.randint(0, 2))),
        uri_prefix=rng.choice(["", "", "file:///lib/a/", "vector:"]),
        size=SizeRange(low, high),
        metadata=tuple(conditions),
    )


# -- what a reader sees --------------------------------------------------------------------


def _outcome(step: Step, catalog: Catalog) -> Any:
    try:
        return ("ok", step(catalog))
    except AssetSearchError as exc:
        return ("error", type(exc).__name__, str(exc))


def _direction(d: DirectionRecord) -> tuple[Any, ...]:
    return (d.name, d.vector.tobytes(), d.norm, d.examples, d.orthogonal_to)


def _asset(record: Any) -> dict[str, Any]:
    row = asdict(record)
    del row["created_at"], row["updated_at"]  # when each backend ran the step
    return row


def _batch(batch: Any) -> tuple[Any, ...]:
    arrays = (batch.removed, batch.added_ids, batch.added_vectors, batch.updated)
    return (batch.last_seq, *(a.tobytes() for a in arrays))


def _collection_view(c: Catalog, col: Any, filters: list[Filter]) -> dict[str, Any]:
    head = c.head_seq(col.id)
    chunks = list(c.all_vectors(col, chunk=7))
    ids = [int(i) for ids, _ in chunks for i in ids]
    matching = [c.matching_ids(col, f).tolist() for f in filters]
    return {
        "head": head,
        "files": c.file_states(col.id),
        "files under a": c.file_states(col.id, "file:///lib/a/"),
        "changes": _batch(c.changes_since(col, 0)),
        "changes window": _batch(c.changes_since(col, head // 2, limit=5)),
        "vectors": [(i.tobytes(), v.tobytes()) for i, v in chunks],
        "matching": matching,
        "first match": c.matching_ids(col, filters[-1], limit=1).tolist(),
        "searchable": [c.searchable([*ids, 10**6], f) for f in filters[-2:]],
        "hits": {e: (_asset(a), s, t) for e, (a, s, t) in c.hits_for_embeddings(ids).items()},
        "directions": [_direction(d) for d in c.directions(col)],
        "options": c.index_options(col.id),
    }


def _view(c: Catalog, filters: list[Filter], deep: bool) -> dict[str, Any]:
    """Everything the catalog answers, in comparable form (``deep``: each asset's vector too)."""
    cols = c.collections()
    assets = c.assets(list(range(1, MAX_ASSET_ID)))
    dims = {col.name: col.dim for col in cols}
    with c.engine.connect() as conn:
        log = conn.execute(
            select(
                Change.seq, Change.collection_id, Change.op, Change.embedding_id, Change.asset_id
            ).order_by(Change.seq)
        ).all()
    view = {
        "collections": cols,
        "per collection": {col.name: _collection_view(c, col, filters) for col in cols},
        "assets": {i: _asset(a) for i, a in assets.items()},
        "log": [tuple(r) for r in log],
    }
    if deep:
        view["asset vectors"] = {
            i: _outcome(lambda k, i=i, a=a: k.asset_vector(i, dims[a.collection]).tobytes(), c)
            for i, a in assets.items()
        }
    return view


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("seed", SEEDS)
def test_sqlite_and_postgresql_agree_after_every_step(
    pair: tuple[Catalog, Catalog], seed: int
) -> None:
    lite, pg = pair
    rng = random.Random(seed)
    for name, (spec, dim) in list(COLLECTIONS.items())[:1]:
        for c in pair:
            c.ensure_collection(name, spec, dim)
    for number in range(STEPS):
        what, step = _step(rng)
        assert _outcome(step, lite) == _outcome(step, pg), f"step {number}: {what}"
        filters = [Filter(), *(_filter(rng) for _ in range(3))]
        deep = number % DEEP_EVERY == DEEP_EVERY - 1
        assert _view(lite, filters, deep) == _view(pg, filters, deep), (
            f"after step {number}: {what}"
        )
    assert lite.head_seq(lite.collection("alpha").id) > 0  # the run did write something
