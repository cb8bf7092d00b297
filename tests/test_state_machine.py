"""A hypothesis state machine over the whole write and read path.

Files are added, changed (sometimes into undecodable bytes) and deleted; the indexer runs;
the server is restarted in its own process, by SIGTERM (it writes a snapshot) or by kill -9
(it must replay from an older snapshot). After every step the server must serve exactly
the model of the last indexed library: its count, its ids (no phantom, no duplicate), the
right vector under each id, exact-search recall, each image found by its own bytes first,
and no old content found at all. ``ASSETSEARCH_TEST_DURABILITY=full`` runs more and longer
examples.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from assetsearch_client import SearchClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from indexer.pipeline import Indexer
from latent.catalog import Catalog
from latent.models.encoders import Encoder
from tests.durability import (
    FULL,
    OWN,
    Library,
    Proc,
    Processes,
    as_stored,
    check_catalog,
    cli_env,
    embed,
    read_catalog,
    wait_caught_up,
)

K = 10
TOLERANCE = 3e-4  # float16 storage and batch composition move a score by ~1e-5


class ServedIndexMachine(RuleBasedStateMachine):
    """The library, the catalog and a server process, against an exact in-memory model."""

    encoder: Encoder  # set by the test: the session's tiny model

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="assetsearch-machine-"))
        self.url = f"sqlite:///{self.tmp / 'catalog.sqlite3'}"
        self.lib = Library(self.tmp / "library", random.Random(0))
        self.indexed = self.lib.frozen()  # the library as of the last indexing run
        self.catalog = Catalog(self.url)
        self.procs = Processes(cli_env(self.tmp / "data", self.url))
        self.server: Proc | None = None
        self.port = 0
        self._vectors: dict[int, np.ndarray] = {}  # seed -> vector as stored
        self._start()

    def _start(self) -> None:
        self.server, self.port = self.procs.serve()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def teardown(self) -> None:
        self.procs.__exit__(None, None, None)
        self.catalog.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _pick(self, i: int) -> str:
        names = sorted(self.lib.current)
        return names[i % len(names)]

    def _model(self) -> dict[str, np.ndarray]:
        """uri -> the vector the server must hold for it (float16, as the catalog stores it)."""
        images = self.indexed.images()
        todo = [v for v in images.values() if v.seed not in self._vectors]
        if todo:
            for v, vec in zip(
                todo, as_stored(embed(self.encoder, [v.data for v in todo])), strict=True
            ):
                self._vectors[v.seed] = vec  # type: ignore[index]
        return {uri: self._vectors[v.seed] for uri, v in images.items()}  # type: ignore[index]

    # -- the library changes ------------------------------------------------------------------

    @initialize(count=st.integers(1, 8))
    def indexed_library(self, count: int) -> None:
        self.lib.add(count)
        self.index()

    @rule(count=st.integers(1, 4), broken=st.booleans(), then_index=st.booleans())
    def add(self, count: int, broken: bool, then_index: bool) -> None:
        self.lib.add(count, broken=int(broken))
        if then_index:
            self.index()

    @precondition(lambda self: self.lib.current)
    @rule(i=st.integers(0, 10**6), broken=st.booleans(), then_index=st.booleans())
    def change(self, i: int, broken: bool, then_index: bool) -> None:
        self.lib.change(self._pick(i), broken=broken and i % 3 == 0)
        if then_index:
            self.index()

    @precondition(lambda self: self.lib.current)
    @rule(i=st.integers(0, 10**6), then_index=st.booleans())
    def delete(self, i: int, then_index: bool) -> None:
        self.lib.delete(self._pick(i))
        if then_index:
            self.index()

    @rule()
    def index(self) -> None:
        Indexer(
            self.catalog, lambda spec: self.encoder, "default", self.encoder.spec, batch_size=4
        ).run([self.lib.root])
        self.indexed = self.lib.frozen()

    # -- the server restarts ------------------------------------------------------------------

    @rule(kill=st.booleans())
    def restart(self, kill: bool) -> None:
        assert self.server is not None
        if kill:
            self.server.kill()
        else:
            self.procs.stop(self.server)
        self._start()

    # -- searches -----------------------------------------------------------------------------

    @precondition(lambda self: self.indexed.images())
    @rule(i=st.integers(0, 10**6))
    def own_bytes_find_their_file_first(self, i: int) -> None:
        images = sorted(self.indexed.images().items())
        uri, version = images[i % len(images)]
        with SearchClient(self.address) as client:
            hits = client.search(image=version.data, top_k=3).hits
        assert hits[0].uri == uri and hits[0].score > OWN, [(h.uri, h.score) for h in hits]

    @precondition(lambda self: self.indexed.stale() and self.indexed.images())
    @rule(i=st.integers(0, 10**6))
    def old_content_is_never_found(self, i: int) -> None:
        stale = self.indexed.stale()
        uri, version = stale[i % len(stale)]
        with SearchClient(self.address) as client:
            hits = client.search(image=version.data, top_k=5).hits
        ghosts = [(h.uri, h.score) for h in hits if h.score > OWN]
        assert not ghosts, f"old content of {uri} found: {ghosts}"

    # -- after every step -----------------------------------------------------------------------

    @invariant()
    def served_index_equals_the_model(self) -> None:
        model = self._model()
        cat = read_catalog(self.url)
        if not cat.dim:  # nothing indexed yet: no collection
            assert not model
            return
        check_catalog(cat, self.indexed)
        wait_caught_up(self.address, cat.head, cat.dim)
        rng = np.random.default_rng(cat.head)
        query = rng.standard_normal(cat.dim).astype(np.float32)
        query /= np.linalg.norm(query)
        with SearchClient(self.address) as client:
            listing = client.search(vector=query, top_k=len(model) + 5)
            top = client.search(vector=query, top_k=K).hits
        # count, ids, duplicates
        assert listing.index_size == len(model), f"serves {listing.index_size}, model {len(model)}"
        uris = [h.uri for h in listing.hits]
        assert len(uris) == len(set(uris)), "an asset is served twice"
        assert set(uris) == set(model), (
            sorted(set(uris) - set(model)),
            sorted(set(model) - set(uris)),
        )
        # the right vector under each id
        for h in listing.hits:
            assert abs(h.score - float(model[h.uri] @ query)) < TOLERANCE, h.uri
        # recall against an exact index of the model
        exact = {uri: float(v @ query) for uri, v in model.items()}
        if exact:
            kth = sorted(exact.values(), reverse=True)[min(K, len(exact)) - 1]
            must = {u for u, s in exact.items() if s > kth + TOLERANCE}
            may = {u for u, s in exact.items() if s >= kth - TOLERANCE}
            got = {h.uri for h in top}
            assert len(top) == min(K, len(exact))
            assert must <= got <= may, f"missed {sorted(must - got)}, wrong {sorted(got - may)}"


@pytest.mark.slow
@pytest.mark.timeout(3600 if FULL else 900)
def test_served_index_follows_the_library(encoder: Encoder) -> None:
    ServedIndexMachine.encoder = encoder
    run_state_machine_as_test(
        ServedIndexMachine,
        settings=settings(
            max_examples=12 if FULL else 5,
            stateful_step_count=30 if FULL else 12,
            deadline=None,
            database=None,
            print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
