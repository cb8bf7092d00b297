"""A bounded, exact, thread-safe LRU cache of query-term embeddings (text and image terms)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from latent.hashing import bytes_sha256
from latent.query.terms import Image, Term, Text

Key = tuple[str, str, str]  # (model spec, term kind, exact text or SHA-256 of the image bytes)


def term_key(spec: str, term: Term) -> Key | None:
    """The cache key of a text or image term under a model; None for terms not cached.

    Keys are exact: the text as sent (no normalisation beyond what embedding does
    anyway), an image by the SHA-256 of its bytes.
    """
    match term:
        case Text(text=text):
            return (spec, "text", text)
        case Image(data=data):
            return (spec, "image", bytes_sha256(bytes(data)))
    return None


class QueryCache:
    """Term embeddings by ``term_key``, least recently used dropped beyond ``capacity``.

    Cached vectors are read-only copies, so a caller cannot change what later callers
    get. A capacity of 0 stores nothing. ``hits`` and ``misses`` count lookups.
    """

    def __init__(self, capacity: int) -> None:
        """Create an empty cache holding at most ``capacity`` vectors."""
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._vectors: OrderedDict[Key, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._vectors)

    def get_or_embed(self, key: Key | None, embed: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached vector for ``key``, else ``embed()``'s result, stored.

        The embedding runs outside the lock: two threads missing the same key both embed
        it (the same vector), rather than every lookup waiting on one model call.

        Args:
            key: The term's key; None embeds without caching.
            embed: Computes the vector on a miss; its errors propagate, nothing is stored.

        Returns:
            The term's vector (read-only when it came from or went into the cache).
        """
        if key is None or self.capacity <= 0:
            return embed()
        with self._lock:
            cached = self._vectors.get(key)
            if cached is not None:
                self._vectors.move_to_end(key)
                self.hits += 1
                return cached
            self.misses += 1
        vector = np.array(embed(), dtype=np.float32)
        vector.setflags(write=False)
        with self._lock:
            self._vectors[key] = vector
            self._vectors.move_to_end(key)
            while len(self._vectors) > self.capacity:
                self._vectors.popitem(last=False)
        return vector
