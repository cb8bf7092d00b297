"""Search filters: the validated model and its text syntax (no SQL here).

The SQL compiler lives with the catalog, in ``latent.catalog.where``.
"""

from latent.query.filters.model import (
    MEDIA_TYPES,
    Filter,
    MetadataCondition,
    MetadataOp,
    Scalar,
    SizeRange,
    TimeRange,
    format_ns,
)
from latent.query.filters.syntax import FilterSyntaxError, combine, parse_filter

__all__ = [
    "MEDIA_TYPES",
    "Filter",
    "FilterSyntaxError",
    "MetadataCondition",
    "MetadataOp",
    "Scalar",
    "SizeRange",
    "TimeRange",
    "combine",
    "format_ns",
    "parse_filter",
]
