"""Durability kit: generated libraries, CLI processes to kill -9, and the invariants to check.

Used by test_crash.py, test_state_machine.py and test_no_stale.py. ``ASSETSEARCH_TEST_DURABILITY``
picks the size: ``ci`` (default: at least 3 kills a test) or ``full`` (at least 20 kills a
test, bigger libraries, more state-machine examples). ``ASSETSEARCH_TEST_SEED`` replays a run;
every test prints the seed it used.
"""

from __future__ import annotations

import copy
import hashlib
import io
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np
from PIL import Image
from sqlalchemy import select

from latent.catalog import Catalog, decode_vectors, make_engine
from latent.catalog.schema import Asset, Change, Collection, Embedding
from latent.media.images import decode_image_bytes
from latent.models.encoders import Encoder
from tests.conftest import TINY_MODEL

REPO = Path(__file__).resolve().parents[1]
FULL = os.environ.get("ASSETSEARCH_TEST_DURABILITY", "ci") == "full"
COLLECTION = "default"
OWN = 0.99999  # an image's own stored vector scores ~0.9999995; the nearest other <= 0.9996
LIVENESS_S = 180.0  # how long a process may take to reach a state before the test gives up


def run_seed(label: str) -> int:
    """The run's seed (``ASSETSEARCH_TEST_SEED`` or a fresh one), printed for replay."""
    given = os.environ.get("ASSETSEARCH_TEST_SEED")
    seed = int(given) if given else random.SystemRandom().randrange(2**32)
    print(f"{label}: seed {seed} (replay with ASSETSEARCH_TEST_SEED={seed})", flush=True)
    return seed


# -- the library ------------------------------------------------------------------------------


def mosaic(seed: int, fmt: str) -> bytes:
    """A distinct picture for a seed: an 8x8 grid of random colours, as PNG or JPEG bytes.

    Grids keep images far apart even under the tiny random model, which maps most
    pictures near one direction (plain shapes on a background score ~0.9999 to each other).
    """
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(cells).resize((64, 64), Image.Resampling.NEAREST).save(out, fmt, quality=95)
    return out.getvalue()


@dataclass(frozen=True)
class Version:
    """One content of a file: image bytes of a seed, or undecodable bytes (seed None)."""

    seed: int | None
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class Library:
    """Generated files on disk plus a model of every version ever written."""

    def __init__(self, root: Path, rng: random.Random) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self.rng = rng
        self.current: dict[str, Version] = {}  # relative path -> content on disk
        self.history: dict[str, list[Version]] = defaultdict(list)
        self.old: list[tuple[str, Version]] = []  # replaced or deleted contents
        self._seed = rng.randrange(1 << 40)
        self._names = 0
        # Every write gets its own mtime: a rewrite is always visible to the size+mtime diff.
        self._mtime_ns = 1_600_000_000 * 10**9 + rng.randrange(10**12)

    def frozen(self) -> Library:
        """A copy of the model as it is now (the files on disk go on changing)."""
        out = copy.copy(self)
        out.current = dict(self.current)
        out.history = defaultdict(list, {k: list(v) for k, v in self.history.items()})
        out.old = list(self.old)
        return out

    def uri(self, rel: str) -> str:
        """The catalog uri of a relative path."""
        return (self.root / rel).as_uri()

    def _write(self, rel: str, broken: bool = False) -> None:
        self._seed += 1
        fmt = "PNG" if rel.endswith(".png") else "JPEG"
        data = b"not an image " + str(self._seed).encode()
        version = Version(None, data) if broken else Version(self._seed, mosaic(self._seed, fmt))
        if rel in self.current:
            self.old.append((rel, self.current[rel]))
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(version.data)
        self._mtime_ns += 1_000_003
        os.utime(path, ns=(self._mtime_ns, self._mtime_ns))
        self.current[rel] = version
        self.history[rel].append(version)

    def add(self, count: int, broken: int = 0) -> list[str]:
        """Write ``count`` new images and ``broken`` undecodable files under new names."""
        names = []
        for i in range(count + broken):
            self._names += 1
            ext = "png" if self._names % 2 else "jpg"
            rel = f"d{self._names % 7}/s{self._names % 3}/f{self._names:05d}.{ext}"
            self._write(rel, broken=i >= count)
            names.append(rel)
        return names

    def change(self, rel: str, broken: bool = False) -> None:
        """Give an existing file new content (and a new mtime)."""
        assert rel in self.current
        self._write(rel, broken)

    def delete(self, rel: str) -> None:
        """Remove a file from disk."""
        self.old.append((rel, self.current.pop(rel)))
        (self.root / rel).unlink()

    def restore(self, rel: str) -> None:
        """Bring a deleted name back, with new content."""
        assert rel not in self.current
        self._write(rel)

    def mutate(self, fraction: float) -> str:
        """Add, change, delete and restore about ``fraction`` of the files each; returns a note."""
        n = max(1, int(len(self.current) * fraction))
        names = sorted(self.current)
        changed = self.rng.sample(names, min(n, len(names)))
        for rel in changed:
            self.change(rel, broken=self.rng.random() < 0.03)
        rest = sorted(set(names) - set(changed))
        deleted = self.rng.sample(rest, min(n, len(rest)))
        for rel in deleted:
            self.delete(rel)
        gone = sorted({rel for rel, _ in self.old} - set(self.current) - set(deleted))
        restored = self.rng.sample(gone, min(max(1, n // 4), len(gone)))
        for rel in restored:
            self.restore(rel)
        added = self.add(n, broken=1)
        return (
            f"changed {len(changed)}, deleted {len(deleted)}, restored {len(restored)}, "
            f"added {len(added)}"
        )

    def images(self) -> dict[str, Version]:
        """Current decodable files by uri."""
        return {self.uri(r): v for r, v in self.current.items() if v.seed is not None}

    def broken(self) -> dict[str, Version]:
        """Current undecodable files by uri."""
        return {self.uri(r): v for r, v in self.current.items() if v.seed is None}

    def stale(self) -> list[tuple[str, Version]]:
        """Old image contents (replaced or deleted) by uri: none may be found any more."""
        return [(self.uri(r), v) for r, v in self.old if v.seed is not None]


def embed(encoder: Encoder, blobs: list[bytes]) -> np.ndarray:
    """Embed image bytes the way the server embeds an image query."""
    images = [decode_image_bytes(b, 64_000_000).image for b in blobs]
    out = [encoder.encode_images(images[i : i + 256]) for i in range(0, len(images), 256)]
    return np.concatenate(out) if out else np.zeros((0, encoder.dim), np.float32)


def as_stored(vectors: np.ndarray) -> np.ndarray:
    """Vectors as the catalog gives them back: float16, re-normalised."""
    blobs = [np.asarray(v, "<f2").tobytes() for v in vectors]
    return decode_vectors(blobs, ["<f2"] * len(blobs), vectors.shape[1])


# -- processes --------------------------------------------------------------------------------


def cli_env(data_dir: Path, database_url: str) -> dict[str, str]:
    """Environment for a CLI process over one data dir and catalog, with the tiny model."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSETSEARCH_")}
    env.update(
        ASSETSEARCH_DATA_DIR=str(data_dir),
        ASSETSEARCH_DATABASE_URL=database_url,
        ASSETSEARCH_MODEL=TINY_MODEL,
        ASSETSEARCH_POLL_INTERVAL="0.05",
        ASSETSEARCH_BATCH_SIZE="16",  # many small transactions: more moments to die in
        ASSETSEARCH_THREADS="1",
        ASSETSEARCH_MAX_TOP_K="100000",  # a search may list a whole collection
        PYTHONUNBUFFERED="1",
    )
    return env


class Proc:
    """A ``python -m cli.main`` process whose output lines are collected as they come."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.args = args
        self.started = time.monotonic()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(s,), daemon=True)
            for s in (self.popen.stdout, self.popen.stderr)
        ]
        for t in self._readers:
            t.start()

    def _read(self, stream: io.TextIOBase) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_line(self, pattern: str, nth: int = 1, timeout: float = LIVENESS_S) -> re.Match | None:
        """The ``nth`` output line matching ``pattern``; None if the process ended first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in map(regex.search, self.lines) if m]
                if len(found) >= nth:
                    return found[nth - 1]
                if not self.alive() and not any(t.is_alive() for t in self._readers):
                    return None
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{self}: no line {pattern!r} in {timeout} s\n{self.output()}"
                    )
                self._cond.wait(0.05)

    def sleep(self, seconds: float) -> bool:
        """Sleep unless the process ends first; True when it is still running after."""
        try:
            self.popen.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return True
        return False

    def kill(self) -> bool:
        """SIGKILL the process; True when it was still running (a real kill)."""
        alive = self.alive()
        if alive:
            os.kill(self.popen.pid, signal.SIGKILL)
        self.wait()
        return alive

    def terminate(self) -> None:
        if self.alive():
            os.kill(self.popen.pid, signal.SIGTERM)

    def wait(self, timeout: float = LIVENESS_S) -> int:
        rc = self.popen.wait(timeout=timeout)
        for t, stream in zip(self._readers, (self.popen.stdout, self.popen.stderr), strict=True):
            t.join(timeout=10)
            if stream is not None and not t.is_alive():
                stream.close()
        return rc

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines[-60:])

    def __str__(self) -> str:
        return f"`assetsearch {' '.join(self.args)}` (pid {self.popen.pid})"


class Processes:
    """Spawns CLI processes and kills whatever is left of them on exit."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: list[Proc] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        for p in self.procs:
            p.kill()

    def spawn(self, *args: str) -> Proc:
        proc = Proc(list(args), self.env)
        self.procs.append(proc)
        return proc

    def run(self, *args: str, timeout: float = 600) -> str:
        """Run to the end; returns the output, fails on a non-zero exit."""
        proc = self.spawn(*args)
        rc = proc.wait(timeout)
        assert rc == 0, f"{proc} exited {rc}:\n{proc.output()}"
        return "\n".join(proc.lines)

    def serve(self) -> tuple[Proc, int]:
        """Start a server on a free port; returns it and its port."""
        proc = self.spawn("-v", "serve", "--host", "127.0.0.1", "--port", "0")
        m = proc.wait_line(r"serving on 127\.0\.0\.1:(\d+)")
        assert m, f"{proc} did not start:\n{proc.output()}"
        return proc, int(m.group(1))

    def stop(self, proc: Proc) -> None:
        """SIGTERM a server and expect a clean exit (it writes a snapshot on the way out)."""
        proc.terminate()
        rc = proc.wait()
        assert rc == 0, f"{proc} exited {rc} on SIGTERM:\n{proc.output()}"


SUMMARY = re.compile(r"indexed (\d+), unchanged (\d+), failed (\d+), deleted (\d+) in ")


def summary_counts(output: str) -> tuple[int, int, int, int]:
    """(indexed, unchanged, failed, deleted) from the index command's last line."""
    m = SUMMARY.search(output)
    assert m, f"no summary line in:\n{output}"
    indexed, unchanged, failed, deleted = map(int, m.groups())
    return indexed, unchanged, failed, deleted


# -- the catalog, read directly -------------------------------------------------------------


@dataclass(frozen=True)
class AssetRow:
    id: int
    state: str
    content_hash: str | None
    size: int
    mtime_ns: int


@dataclass
class CatalogState:
    """Everything one collection holds, read straight from the tables."""

    assets: dict[str, AssetRow] = field(default_factory=dict)  # uri -> row
    embeddings: dict[int, int] = field(default_factory=dict)  # embedding id -> asset id
    changes: list[tuple[int, str, int, int]] = field(default_factory=list)  # seq, op, emb, asset
    dim: int = 0
    vectors: np.ndarray | None = None  # rows in sorted embedding id order

    @property
    def head(self) -> int:
        return self.changes[-1][0] if self.changes else 0

    def ids_of(self, state: str) -> set[int]:
        return {a.id for a in self.assets.values() if a.state == state}


def read_catalog(url: str, vectors: bool = True) -> CatalogState:
    """The default collection's assets, embeddings and change log (empty if none yet)."""
    engine = make_engine(url)
    out = CatalogState()
    try:
        with engine.connect() as conn:
            col = conn.execute(select(Collection).where(Collection.name == COLLECTION)).first()
            if col is None:
                return out
            out.dim = col.dim
            for r in conn.execute(select(Asset).where(Asset.collection_id == col.id)):
                out.assets[r.uri] = AssetRow(r.id, r.state, r.content_hash, r.size, r.mtime_ns)
            rows = conn.execute(
                select(Embedding.id, Embedding.asset_id, Embedding.vector, Embedding.dtype)
                .where(Embedding.collection_id == col.id)
                .order_by(Embedding.id)
            ).all()
            out.embeddings = {r.id: r.asset_id for r in rows}
            if vectors:
                out.vectors = decode_vectors(
                    [r.vector for r in rows], [r.dtype for r in rows], col.dim
                )
            out.changes = [
                (r.seq, r.op, r.embedding_id, r.asset_id)
                for r in conn.execute(
                    select(Change.seq, Change.op, Change.embedding_id, Change.asset_id)
                    .where(Change.collection_id == col.id)
                    .order_by(Change.seq)
                )
            ]
    finally:
        engine.dispose()
    return out


def live_ids_at(changes: list[tuple[int, str, int, int]], seq: int) -> set[int]:
    """The embedding ids the change log says exist after entry ``seq``."""
    live: set[int] = set()
    for s, op, emb, _ in changes:
        if s > seq:
            break
        if op == "add":
            live.add(emb)
        else:
            live.discard(emb)
    return live


def check_catalog(cat: CatalogState, lib: Library) -> None:
    """SQL agrees with the library: one row per file, one vector per image, a clean log."""
    by_state: dict[str, set[str]] = defaultdict(set)
    for uri, row in cat.assets.items():
        by_state[row.state].add(uri)
    images, broken = lib.images(), lib.broken()
    _same("indexed assets vs image files", by_state["indexed"], set(images))
    _same("failed assets vs undecodable files", by_state["failed"], set(broken))
    _same(
        "other assets are deleted", set(cat.assets) - set(images) - set(broken), by_state["deleted"]
    )
    assert set(by_state) <= {"indexed", "failed", "deleted"}, sorted(by_state)
    for uri, version in {**images, **broken}.items():
        assert cat.assets[uri].content_hash == version.sha256, f"{uri}: stale content hash"
    owners = Counter(cat.embeddings.values())
    _same("assets with vectors vs indexed assets", set(owners), cat.ids_of("indexed"))
    extra = {a: n for a, n in owners.items() if n != 1}
    assert not extra, f"assets with more than one vector: {extra}"
    # The log replays to exactly the embedding table; each id is added once, deleted at most once.
    _same(
        "embedding ids vs the change log replayed",
        live_ids_at(cat.changes, cat.head),
        set(cat.embeddings),
    )
    ops = Counter((op, emb) for _, op, emb, _ in cat.changes)
    repeated = [k for k, n in ops.items() if n > 1]
    assert not repeated, f"change-log entries repeated: {repeated[:10]}"
    adds: Counter[int] = Counter(a for _, op, _, a in cat.changes if op == "add")
    for rel, versions in lib.history.items():
        row = cat.assets.get(lib.uri(rel))
        if row is None:
            continue
        written = sum(v.seed is not None for v in versions)
        # Each content is encoded and committed at most once, however often the run died.
        assert adds[row.id] <= written, f"{rel}: {adds[row.id]} adds for {written} contents"


def _same(what: str, got: set, want: set) -> None:
    if got != want:
        missing, extra = sorted(want - got), sorted(got - want)
        raise AssertionError(
            f"{what}: {len(missing)} missing {missing[:5]}, {len(extra)} unexpected {extra[:5]}"
        )


def check_own_first(cat: CatalogState, lib: Library, encoder: Encoder) -> None:
    """Each image's own bytes find its own stored vector first (nothing else wins)."""
    images = lib.images()
    uris = sorted(images)
    queries = embed(encoder, [images[u].data for u in uris])
    ids = np.fromiter(cat.embeddings, np.int64)
    owner = {a.id: uri for uri, a in cat.assets.items()}
    assert cat.vectors is not None
    best = (queries @ cat.vectors.T).argmax(axis=1)
    wrong = [(u, owner[cat.embeddings[int(ids[b])]]) for u, b in zip(uris, best, strict=True)]
    wrong = [(u, o) for u, o in wrong if u != o]
    assert not wrong, f"{len(wrong)} images find another asset first: {wrong[:5]}"


def check_live_index(url: str, data_dir: Path, cat: CatalogState) -> str:
    """A freshly loaded index (snapshot + replay, as the server starts) holds the catalog's ids."""
    from latent.index.live import LiveIndex

    catalog = Catalog(url)
    try:
        live = LiveIndex(catalog, catalog.collection(COLLECTION), data_dir / "snapshots")
        source = live.load()
        index = live.generation.index
        ids = index.ids()
        assert len(ids) == len(index), f"ids() lists {len(ids)} ids, ntotal is {len(index)}"
        dupes = [i for i, n in Counter(ids.tolist()).items() if n > 1]
        assert not dupes, f"duplicate FAISS ids: {dupes[:10]}"
        _same("FAISS ids vs catalog embedding ids", set(ids.tolist()), set(cat.embeddings))
        assert live.generation.seq == cat.head
        if len(ids):
            stored = index.vectors(np.fromiter(cat.embeddings, np.int64))
            assert cat.vectors is not None
            np.testing.assert_allclose(stored, cat.vectors, atol=1e-5)
        return source
    finally:
        catalog.close()


# -- a running server, over gRPC -------------------------------------------------------------


def _unit(rng: random.Random, dim: int) -> np.ndarray:
    v = np.array([rng.gauss(0, 1) for _ in range(dim)], np.float32)
    return v / np.linalg.norm(v)


def wait_caught_up(address: str, head: int, dim: int) -> None:
    """Wait until the server's generation reflects change-log entry ``head``."""
    from assetsearch_client import NotFound, SearchClient, Unavailable

    deadline = time.monotonic() + LIVENESS_S
    with SearchClient(address) as client:
        while True:
            try:
                seq = client.search(vector=np.ones(dim, np.float32), top_k=1).index_seq
                if seq >= head:
                    assert seq == head, f"server at seq {seq}, catalog head is {head}"
                    return
            except (Unavailable, NotFound):
                pass
            assert time.monotonic() < deadline, f"server at {address} stuck before seq {head}"
            time.sleep(0.05)


def generation_matches_log(address: str, url: str, dim: int) -> tuple[int, int] | None:
    """Ask a running server for its generation; its size must match the log at its seq.

    Returns (seq, size), or None when the collection is not served yet.
    """
    from assetsearch_client import NotFound, SearchClient, Unavailable

    with SearchClient(address, timeout=30) as client:
        try:
            response = client.search(vector=np.ones(dim, np.float32), top_k=1)
        except (Unavailable, NotFound):
            return None
    live = live_ids_at(read_catalog(url, vectors=False).changes, response.index_seq)
    assert response.index_size == len(live), (
        f"generation at seq {response.index_seq} holds {response.index_size} vectors, "
        f"the log says {len(live)}"
    )
    return response.index_seq, response.index_size


def check_server(
    address: str,
    cat: CatalogState,
    lib: Library,
    rng: random.Random,
    sample: int = 60,
) -> None:
    """A server answers from exactly the catalog: no phantom, missing, duplicate or stale hit."""
    from assetsearch_client import SearchClient

    wait_caught_up(address, cat.head, cat.dim)
    by_id = {a.id: uri for uri, a in cat.assets.items()}
    with SearchClient(address) as client:
        everything = client.search(vector=_unit(rng, cat.dim), top_k=len(cat.embeddings) + 10)
        assert everything.index_seq == cat.head
        assert everything.index_size == len(cat.embeddings), (
            f"server holds {everything.index_size} vectors, catalog {len(cat.embeddings)}"
        )
        hit_ids = [h.asset_id for h in everything.hits]
        assert len(hit_ids) == len(set(hit_ids)), "an asset is listed twice"
        _same("hits of a full listing vs indexed assets", set(hit_ids), cat.ids_of("indexed"))
        images = sorted(lib.images().items())
        for uri, version in rng.sample(images, min(sample, len(images))):
            hits = client.search(image=version.data, top_k=3).hits
            assert hits and hits[0].uri == uri and hits[0].score > OWN, (
                f"{uri}: its own bytes find {[(h.uri, h.score) for h in hits]}"
            )
        stale = lib.stale()
        for uri, version in rng.sample(stale, min(sample, len(stale))):
            hits = client.search(image=version.data, top_k=3).hits
            ghosts = [(h.uri, h.score) for h in hits if h.score > OWN]
            assert not ghosts, f"old content of {uri} (seed {version.seed}) still found: {ghosts}"
            assert all(by_id.get(h.asset_id) == h.uri for h in hits)
