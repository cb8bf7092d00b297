"""Query terms: one small union of frozen dataclasses, shared by the client and the server.

A query is a weighted sum of terms; each term is one of::

    Text("a red circle")          a text, embedded by the collection's model
    Image(png_bytes)              image bytes, decoded and embedded by the server
    Asset(42)                     the stored vector of an indexed asset
    Vector((0.1, 0.2, ...))       a raw vector of the collection's dimension
    Direction("warmth")           a named direction stored in the collection

Every term takes a ``weight`` (default 1.0): ``Text("red", weight=-1)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeAlias


@dataclass(frozen=True)
class Text:
    """A text, embedded by the collection's text tower."""

    text: str
    weight: float = 1.0


@dataclass(frozen=True)
class Image:
    """Image bytes (any format the server decodes), embedded by the image tower."""

    data: bytes = field(repr=False)
    weight: float = 1.0


@dataclass(frozen=True)
class Asset:
    """The stored vector of an indexed asset."""

    asset_id: int
    weight: float = 1.0


@dataclass(frozen=True)
class Vector:
    """A raw vector; it must have the collection's dimension."""

    values: tuple[float, ...]
    weight: float = 1.0

    @classmethod
    def of(cls, values: Iterable[float], weight: float = 1.0) -> Vector:
        """A vector term from any iterable of numbers (a list, a numpy array)."""
        return cls(tuple(float(v) for v in values), weight)


@dataclass(frozen=True)
class Direction:
    """A named direction stored in the collection."""

    name: str
    weight: float = 1.0


Term: TypeAlias = Text | Image | Asset | Vector | Direction
Example: TypeAlias = Text | Image | Asset
"""What a named direction is made from: texts, images or indexed assets."""


def describe(term: Term) -> str:
    """A short readable form, as written in an expression."""
    match term:
        case Text(text=text):
            body = '"' + text.replace('"', '\\"') + '"'
        case Image(data=data):
            body = f"image[{len(data)} bytes]"
        case Asset(asset_id=asset_id):
            body = f"asset:{asset_id}"
        case Direction(name=name):
            body = f"dir:{name}"
        case Vector(values=values):
            body = f"vector[{len(values)}]"
    return body if term.weight == 1.0 else f"{term.weight:g}*{body}"
