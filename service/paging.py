"""Page tokens of Search: opaque, bound to one query, resumable by any replica.

A token is URL-safe base64 of a small JSON object: the query's fingerprint (a hash of
the request without top_k, page_token and explain, with the collection resolved), the
number of hits already returned, the index ``seq`` that ranked them and, for diversified
or de-duplicated queries, the size of the candidate pool they were picked from. It
carries no secret: a hand-made token can only ask for hits the caller could ask for.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb

from latent.errors import InvalidArgument
from latent.hashing import bytes_sha256

VERSION = 1
MAX_TOKEN_CHARS = 512
MAX_PAGE_DEPTH = 100_000  # offset + top_k: deeper pages cost too much to rank again


@dataclass(frozen=True)
class PageToken:
    """Where the next page of one query starts."""

    fingerprint: str
    offset: int
    seq: int
    pool: int = 0  # candidates ranked by a shaped (diversity / dedup) query; 0 otherwise

    def encode(self) -> str:
        """The opaque token string."""
        body = {"v": VERSION, "f": self.fingerprint, "o": self.offset, "s": self.seq}
        if self.pool:
            body["p"] = self.pool
        raw = json.dumps(body, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def fingerprint(request: pb.SearchRequest, collection: str) -> str:
    """A hash of what decides a query's ranking: collection, query, filter, shaping."""
    bound = pb.SearchRequest()
    bound.CopyFrom(request)
    bound.collection = collection
    for name in ("top_k", "page_token", "explain"):
        bound.ClearField(name)
    return bytes_sha256(bound.SerializeToString(deterministic=True))[:32]


def decode(token: str, expected_fingerprint: str) -> PageToken:
    """The token of a request, checked against the request's own fingerprint.

    Raises:
        InvalidArgument: the token is malformed or belongs to another query.
    """
    malformed = InvalidArgument(
        "page_token is not a token this service issued; pass a next_page_token unchanged"
    )
    if len(token) > MAX_TOKEN_CHARS:
        raise malformed
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
    except (binascii.Error, ValueError):
        raise malformed from None
    if not isinstance(body, dict) or body.get("v") != VERSION:
        raise malformed
    fields = (body.get("f"), body.get("o"), body.get("s"), body.get("p", 0))
    if not isinstance(fields[0], str) or not all(type(x) is int and x >= 0 for x in fields[1:]):
        raise malformed
    parsed = PageToken(*fields)  # type: ignore[arg-type]
    if parsed.fingerprint != expected_fingerprint:
        raise InvalidArgument(
            "page_token belongs to another query: send the same collection, query, filter, "
            "diversity, dedup_threshold and snap as the request that returned it, or drop "
            "the token to start again"
        )
    if parsed.offset > MAX_PAGE_DEPTH:
        raise malformed
    return parsed
