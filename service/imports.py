"""The ImportVectors RPC: one batch of externally computed vectors per call."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb
from google.protobuf import json_format

from latent.catalog import import_collection
from latent.catalog.external import check_batch
from latent.errors import InvalidArgument
from service.limits import check_at_most

if TYPE_CHECKING:
    from latent.catalog import Catalog
    from latent.settings import Settings


def batch_matrix(request: pb.ImportVectorsRequest, settings: Settings) -> np.ndarray:
    """The request's vectors as a (rows, dim) float32 matrix.

    Raises:
        InvalidArgument: no rows, more than ``settings.max_import_rows``, or a byte count
            that is not rows x dim x 4.
    """
    rows, dim = len(request.ids), request.dim
    if rows == 0:
        raise InvalidArgument("the batch has no ids: there is nothing to import")
    check_at_most("rows in one ImportVectors batch", rows, "max_import_rows", settings)
    if dim <= 0:
        raise InvalidArgument(f"dim must be the vectors' dimension (positive), got {dim}")
    if len(request.vectors) != rows * dim * 4:
        raise InvalidArgument(
            f"vectors holds {len(request.vectors)} bytes; {rows} ids x {dim} dimensions x 4 "
            f"bytes (float32) is {rows * dim * 4}"
        )
    return np.frombuffer(request.vectors, dtype="<f4").reshape(rows, dim)


def import_batch(
    catalog: Catalog, request: pb.ImportVectorsRequest, settings: Settings
) -> pb.ImportVectorsResponse:
    """Validate a batch, then write it in one transaction (a rejected batch writes nothing).

    The batch goes to the request's collection, or the server's default one
    (``settings.collection``), and holds at most ``settings.max_import_rows`` rows.

    Raises:
        InvalidArgument: a malformed batch (the message says which row).
        DimensionMismatch: the collection has another dimension.
        FailedPrecondition: the collection has another model.
    """
    name = request.collection or settings.collection
    matrix = batch_matrix(request, settings)
    metadata = (
        [json_format.MessageToDict(m) for m in request.metadata] if request.metadata else None
    )
    if metadata is not None and len(metadata) != len(request.ids):
        raise InvalidArgument(
            f"{len(metadata)} metadata objects for {len(request.ids)} ids: give none or one per id"
        )
    ids = list(request.ids)
    check_batch(ids, matrix, metadata)  # before a new collection is created for it
    collection = import_collection(catalog, name, request.model_spec, request.dim)
    counts = catalog.import_vectors(collection, ids, matrix, metadata)
    return pb.ImportVectorsResponse(
        collection=collection.name,
        added=counts.added,
        replaced=counts.replaced,
        model_spec=collection.model_spec,
        dim=collection.dim,
    )
