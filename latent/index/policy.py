"""Which FAISS index a collection gets: ``IndexSpec`` and the policy choosing it by size and memory.

Like autofaiss: exact flat search below ``flat_threshold`` vectors; above it an IVF
index whose storage (Flat, SQ8, PQ) is the most exact one that fits the memory
budget. HNSW is never picked automatically (building it at 1M vectors on a small
machine takes too long) but any collection can ask for it, or for any type and
parameter, through an override. A parameter left at 0 is chosen here or tuned at
build time (``latent/index/build.py``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from latent.errors import InvalidArgument

KINDS = ("flat", "hnsw", "ivf-flat", "ivf-sq8", "ivf-pq")
FLAT_THRESHOLD = 50_000
MIN_TRAINED = 1_000  # an IVF index needs this many vectors to train its lists; below: flat
MIN_POINTS_PER_LIST = 39  # FAISS' k-means wants at least 39 training points per centroid
MAX_NLIST = 2048  # beyond it training and adding at 1M vectors get slow on a small machine
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
GROWTH_BEFORE_RETRAIN = 2.0  # retrain IVF lists once the collection doubled since training
ID_BYTES = 8  # the stored int64 id
MAP_BYTES = 32  # the hash map entry from id to position (IndexIDMap2 or the IVF direct map)
_PARAMS = ("nlist", "nprobe", "m", "ef_construction", "ef_search", "pq_m")


@dataclass(frozen=True)
class IndexSpec:
    """An index type and its parameters; 0 means "not chosen yet" in an override.

    Attributes:
        kind: One of ``KINDS``.
        nlist: IVF inverted lists.
        nprobe: IVF lists probed per query (tuned at build time when 0).
        m: HNSW links per node.
        ef_construction: HNSW build-time beam width.
        ef_search: HNSW query-time beam width (tuned at build time when 0).
        pq_m: PQ sub-quantizers (bytes per vector); must divide the dimension.
        trained_on: Vectors the index was built from (drives retraining).
        recall: Recall@10 against exact search measured at build time, when tuned.
    """

    kind: str = "flat"
    nlist: int = 0
    nprobe: int = 0
    m: int = 0
    ef_construction: int = 0
    ef_search: int = 0
    pq_m: int = 0
    trained_on: int = 0
    recall: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidArgument(
                f"unknown index type {self.kind!r}; use one of {', '.join(KINDS)}"
            )
        bad = [name for name in _PARAMS if getattr(self, name) < 0]
        if bad:
            raise InvalidArgument(f"index parameters must not be negative: {', '.join(bad)}")

    @property
    def is_ivf(self) -> bool:
        """Whether this is an inverted-file index (trained lists)."""
        return self.kind.startswith("ivf-")

    def params(self) -> dict[str, int]:
        """The parameters that are set (non-zero), for messages and comparisons."""
        return {name: getattr(self, name) for name in _PARAMS if getattr(self, name)}

    def describe(self) -> str:
        """A short human form, e.g. ``ivf-sq8(nlist=1024, nprobe=24)``."""
        params = ", ".join(f"{k}={v}" for k, v in self.params().items())
        return f"{self.kind}({params})" if params else self.kind

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for the snapshot manifest and the catalog)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexSpec:
        """Parse ``to_dict`` output or a user override ({"kind": "ivf-pq", "pq_m": 64}).

        Raises:
            InvalidArgument: unknown keys, an unknown kind or a bad value.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidArgument(f"unknown index option(s): {', '.join(unknown)}")
        try:
            values: dict[str, Any] = {
                k: (v if k in ("kind", "recall") else int(v)) for k, v in data.items()
            }
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"index options must be integers: {exc}") from None
        return cls(**values)


def bytes_per_vector(spec: IndexSpec, dim: int) -> int:
    """Estimated resident bytes per stored vector of an index of this spec.

    Flat and IVF-Flat keep float32 vectors (4·dim), SQ8 one byte per dimension, PQ
    ``pq_m`` bytes; HNSW adds about 2·m int32 links per vector on its bottom layer
    (and ~1/m of that above). Every type stores the id and an id→position map entry.
    """
    code = {"flat": 4 * dim, "hnsw": 4 * dim, "ivf-flat": 4 * dim, "ivf-sq8": dim}.get(
        spec.kind, spec.pq_m or default_pq_m(dim)
    )
    links = 0
    if spec.kind == "hnsw":
        m = spec.m or HNSW_M
        links = 2 * m * 4 + m * 4 // max(m - 1, 1) + 4 + 8  # level 0, upper levels, level, offset
    return code + links + ID_BYTES + MAP_BYTES


def estimate_bytes(spec: IndexSpec, n: int, dim: int) -> int:
    """Estimated resident bytes of the whole index (vectors plus IVF centroids)."""
    return n * bytes_per_vector(spec, dim) + spec.nlist * dim * 4


def default_nlist(n: int) -> int:
    """About 4·sqrt(n) lists, capped, and never fewer than 39 training points each."""
    return max(1, min(round(4 * math.sqrt(n)), MAX_NLIST, n // MIN_POINTS_PER_LIST))


def default_pq_m(dim: int, max_bytes: int | None = None) -> int:
    """The largest divisor of ``dim`` up to ``max_bytes`` (default dim/4: 4 dimensions a byte)."""
    limit = min(dim, max(1, max_bytes or dim // 4))
    return max(m for m in range(1, limit + 1) if dim % m == 0)


@dataclass(frozen=True)
class IndexPolicy:
    """Chooses a collection's index from its size, a memory budget and overrides.

    Attributes:
        flat_threshold: Below this many vectors a collection is searched exactly.
        memory_budget: Bytes one collection's index may use (None: unbounded).
        override: The process-wide choice (``ASSETSEARCH_INDEX_TYPE``) for collections
            without their own.
        target_recall: Recall@10 that build-time tuning of nprobe / efSearch aims at
            (above the 0.95 promised, as sample queries only estimate it).
        fold_min: Pending delta vectors and tombstones before they are folded into a
            new base (a copy of it, made in the background).
        fold_fraction: ... or this share of the base, whichever is larger.
    """

    flat_threshold: int = FLAT_THRESHOLD
    memory_budget: int | None = None
    override: IndexSpec | None = None
    target_recall: float = 0.97
    fold_min: int = 2_000
    fold_fraction: float = 0.02

    def fold_due(self, pending: int, base: int) -> bool:
        """Whether ``pending`` changes on a base of ``base`` vectors are worth a fold."""
        return pending > 0 and pending >= max(self.fold_min, self.fold_fraction * base)

    def choose(self, n: int, dim: int, override: IndexSpec | None = None) -> IndexSpec:
        """The spec to build for ``n`` vectors (override first, then size and budget).

        A trained type asked for while the collection is still too small to train
        (under ``MIN_TRAINED`` vectors) becomes flat until it has grown.
        """
        wanted = override or self.override
        if wanted is not None:
            return complete(wanted, n, dim)
        if n < self.flat_threshold:
            return complete(IndexSpec("flat"), n, dim)
        candidates = [IndexSpec("ivf-flat"), IndexSpec("ivf-sq8")]
        candidates += [IndexSpec("ivf-pq", pq_m=m) for m in _pq_sizes(dim)]
        specs = [complete(c, n, dim) for c in candidates]
        for spec in specs:
            if self.memory_budget is None or estimate_bytes(spec, n, dim) <= self.memory_budget:
                return spec
        return specs[-1]  # nothing fits: the smallest there is

    def rebuild_reason(
        self, current: IndexSpec, n: int, dim: int, override: IndexSpec | None = None
    ) -> str | None:
        """Why an index of spec ``current`` over ``n`` vectors should be rebuilt, or None."""
        explicit = override or self.override
        wanted = self.choose(n, dim, override)
        if wanted.kind != current.kind:
            # Hysteresis: a trained index stays until the collection shrank well below the
            # threshold, so a collection hovering around it is not rebuilt back and forth.
            if explicit is None and wanted.kind == "flat" and n >= self.flat_threshold // 2:
                return None
            return f"{current.kind} -> {wanted.kind} at {n} vectors"
        if explicit is not None:
            # Compare with what the override builds at the size the index was built at, so
            # parameters clamped by size (nlist) do not ask for a rebuild on every change.
            then = complete(explicit, current.trained_on, dim)
            changed = [k for k in explicit.params() if getattr(then, k) != getattr(current, k)]
            if changed:
                return f"override changed {', '.join(sorted(changed))}"
        if current.is_ivf and current.trained_on and n > GROWTH_BEFORE_RETRAIN * current.trained_on:
            return f"grew from {current.trained_on} to {n} vectors since training"
        if current.kind == "ivf-pq" and explicit is None and wanted.pq_m != current.pq_m:
            return f"the memory budget now wants pq_m={wanted.pq_m}"
        return None


def complete(spec: IndexSpec, n: int, dim: int) -> IndexSpec:
    """Fill the parameters an override left at 0 for ``n`` vectors of ``dim``.

    Raises:
        InvalidArgument: a PQ size that does not divide the dimension.
    """
    if spec.is_ivf and n < MIN_TRAINED:
        return IndexSpec("flat", trained_on=n)
    if spec.kind == "flat":
        return IndexSpec("flat", trained_on=n)
    if spec.kind == "hnsw":
        return replace(
            spec,
            m=spec.m or HNSW_M,
            ef_construction=spec.ef_construction or HNSW_EF_CONSTRUCTION,
            trained_on=n,
        )
    nlist = min(spec.nlist, n // MIN_POINTS_PER_LIST) if spec.nlist else default_nlist(n)
    spec = replace(spec, nlist=max(1, nlist), trained_on=n)
    if spec.kind == "ivf-pq":
        pq_m = spec.pq_m or default_pq_m(dim)
        if dim % pq_m:
            raise InvalidArgument(f"pq_m={pq_m} must divide the dimension {dim}")
        spec = replace(spec, pq_m=pq_m)
    return spec


def _pq_sizes(dim: int) -> list[int]:
    """PQ sizes from dim/2 bytes down to dim/32 (divisors of dim), most exact first."""
    return sorted({default_pq_m(dim, dim // d) for d in (2, 4, 8, 16, 32)}, reverse=True)
