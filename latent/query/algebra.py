"""Query algebra: weighted terms (text, image, asset, vector), embedded, summed, normalised."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from latent.errors import DimensionMismatch, InvalidArgument
from latent.linalg import unit
from latent.media.images import decode_image_bytes
from latent.query.terms import Asset, Direction, Image, Term, Text, Vector

if TYPE_CHECKING:
    from latent.catalog import Catalog, CollectionInfo
    from latent.models.encoders import Encoder

MAX_TEXT_CHARS = 2000


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
    match term:
        case Text(text=text):
            return _embed_text(text, encoder)
        case Image(data=data):
            decoded = decode_image_bytes(data, max_pixels)
            assert encoder is not None
            return unit(encoder.encode_images([decoded.image])[0])
        case Asset(asset_id=asset_id):
            asset = catalog.asset(asset_id)
            if asset.collection != collection.name:
                # Never name the other collection: a key limited to this one may not learn it.
                raise InvalidArgument(
                    f"asset {asset_id} is not in collection {collection.name!r}; an asset term "
                    "must come from the collection searched"
                )
            return catalog.asset_vector(asset_id, collection.dim)
        case Direction(name=name):
            return unit(catalog.direction(collection, name).vector)
        case Vector(values=values):
            if len(values) != collection.dim:
                raise DimensionMismatch(
                    f"query vector has {len(values)} dimensions; collection "
                    f"{collection.name!r} ({collection.model_spec}) has {collection.dim}"
                )
            return unit(np.asarray(values, dtype=np.float32))


def _embed_text(text: str, encoder: Encoder | None) -> np.ndarray:
    text = text.strip()
    if not text:
        raise InvalidArgument("query text is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidArgument(f"query text is longer than {MAX_TEXT_CHARS} characters")
    assert encoder is not None
    return unit(encoder.encode_texts([text])[0])


def needs_encoder(term: Term) -> bool:
    """Whether embedding the term runs the model."""
    return isinstance(term, Text | Image)


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
        return unit(total)
    except InvalidArgument:
        raise InvalidArgument("the weighted terms cancel out: the query has no direction") from None
