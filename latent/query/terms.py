"""Query terms (text | image | asset | vector | direction): one union, defined once.

The union lives in the light client, ``assetsearch_client.terms``, so that a caller
builds the very objects the server's engine takes; this module is its name in the core.
"""

from assetsearch_client.terms import (
    Asset,
    Direction,
    Example,
    Image,
    Term,
    Text,
    Vector,
    describe,
)

__all__ = [
    "Asset",
    "Direction",
    "Example",
    "Image",
    "Term",
    "Text",
    "Vector",
    "describe",
]
