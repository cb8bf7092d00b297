"""Query algebra: weighted terms (text, image, asset, vector), embedded, summed, normalised."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from latent.catalog import Catalog, CollectionInfo
from latent.encoders import Encoder
from latent.errors import DimensionMismatch, InvalidArgument
from latent.expressions import parse_expression
from latent.media import decode_image_bytes

TermKind = Literal["text", "image", "asset", "vector", "direction"]
MAX_TEXT_CHARS = 2000


@dataclass(frozen=True)
class Term:
    """One weighted thing to search by: text, image bytes, an asset id, a vector or a direction."""

    kind: TermKind
    text: str = ""
    image: bytes = b""
    asset_id: int = 0
    vector: tuple[float, ...] = ()
    weight: float = 1.0
    direction: str = ""

    def describe(self) -> str:
        """A short readable form, as in an expression."""
        if self.kind == "text":
            body = '"' + self.text.replace('"', '\\"') + '"'
        elif self.kind == "image":
            body = f"image[{len(self.image)} bytes]"
        elif self.kind == "asset":
            body = f"asset:{self.asset_id}"
        elif self.kind == "direction":
            body = f"dir:{self.direction}"
        else:
            body = f"vector[{len(self.vector)}]"
        return body if self.weight == 1.0 else f"{self.weight:g}*{body}"


def normalise(vector: np.ndarray) -> np.ndarray:
    """Scale to unit length.

    Raises:
        InvalidArgument: the vector is zero or not finite.
    """
    vector = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm < 1e-12:
        raise InvalidArgument("query vector is zero or not finite; it has no direction to search")
    return vector / norm


def embed_term(
    term: Term,
    catalog: Catalog,
    collection: CollectionInfo,
    encoder: Encoder | None,
    max_pixels: int,
) -> np.ndarray:
    """Embed one term into the collection's space as a unit float32 vector.

    ``encoder`` may be None for asset and vector terms, which need no model.

    Raises:
        InvalidArgument: the term is empty or malformed.
        DimensionMismatch: a raw vector has the wrong dimension.
        NotFound: an asset or direction term names something unknown.
    """
    if term.kind == "text":
        text = term.text.strip()
        if not text:
            raise InvalidArgument("query text is empty")
        if len(text) > MAX_TEXT_CHARS:
            raise InvalidArgument(f"query text is longer than {MAX_TEXT_CHARS} characters")
        assert encoder is not None
        return normalise(encoder.encode_texts([text])[0])
    if term.kind == "image":
        decoded = decode_image_bytes(term.image, max_pixels)
        assert encoder is not None
        return normalise(encoder.encode_images([decoded.image])[0])
    if term.kind == "asset":
        asset = catalog.asset(term.asset_id)
        if asset.collection != collection.name:
            raise InvalidArgument(
                f"asset {term.asset_id} belongs to collection {asset.collection!r}, "
                f"not {collection.name!r}"
            )
        return catalog.asset_vector(term.asset_id, collection.dim)
    if term.kind == "direction":
        return normalise(catalog.direction(collection, term.direction).vector)
    if len(term.vector) != collection.dim:
        raise DimensionMismatch(
            f"query vector has {len(term.vector)} dimensions; collection {collection.name!r} "
            f"({collection.model_spec}) has {collection.dim}"
        )
    return normalise(np.asarray(term.vector, dtype=np.float32))


def needs_encoder(term: Term) -> bool:
    """Whether embedding the term runs the model."""
    return term.kind in ("text", "image")


def compose(vectors: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The unit vector of the weighted sum of unit term vectors.

    Raises:
        InvalidArgument: the terms cancel out (for example ``"red" - "red"``).
    """
    if not vectors:
        raise InvalidArgument("the query has no terms")
    total = np.zeros_like(vectors[0], dtype=np.float32)
    for vector, weight in zip(vectors, weights, strict=True):
        if not math.isfinite(weight):
            raise InvalidArgument(f"term weight {weight} is not a finite number")
        total += np.float32(weight) * vector
    try:
        return normalise(total)
    except InvalidArgument:
        raise InvalidArgument("the weighted terms cancel out: the query has no direction") from None


def terms_from_expression(
    text: str, read_image: Callable[[str], bytes] | None = None
) -> list[Term]:
    """Parse an expression into terms; ``image:PATH`` needs ``read_image``.

    Raises:
        ExpressionError: the expression is malformed.
        InvalidArgument: it has an image term and no way to read images.
    """
    terms = []
    for parsed in parse_expression(text):
        if parsed.kind == "text":
            terms.append(Term("text", text=str(parsed.value), weight=parsed.weight))
        elif parsed.kind == "asset":
            terms.append(Term("asset", asset_id=int(parsed.value), weight=parsed.weight))
        elif parsed.kind == "direction":
            terms.append(Term("direction", direction=str(parsed.value), weight=parsed.weight))
        elif read_image is None:
            raise InvalidArgument(
                f"image:{parsed.value} names a file the server cannot read; send the image "
                "bytes as a term instead (the CLI does this for you)"
            )
        else:
            terms.append(Term("image", image=read_image(str(parsed.value)), weight=parsed.weight))
    return terms
