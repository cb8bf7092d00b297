"""The LibraryService servicer: uploads, deletes and metadata of assets; collections.

An upload is decoded and embedded here exactly as the indexer does a file
(``indexer.embed``) and written in one catalog transaction with its vector and change-log
entry, so it is searchable at the servers' next poll. Its bytes are held in a spooled
temporary file (memory up to ``SPOOL_BYTES``, then disk) and refused as soon as they
pass ``max_file_bytes``; bytes that cannot be decoded are refused with the decoder's
reason and write nothing.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import grpc
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb
from assetsearch_client._pb.assetsearch.v1 import search_pb2_grpc as pb_grpc
from google.protobuf import json_format

from indexer import embed
from indexer.metadata import MAX_METADATA_BYTES
from latent.catalog import AssetWrite
from latent.catalog.lifecycle import check_collection_name
from latent.errors import (
    AlreadyExists,
    AssetSearchError,
    Cancelled,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from service.auth import require_collection
from service.convert.records import asset_message, collection_message
from service.deadlines import stop_if_done

if TYPE_CHECKING:
    from google.protobuf import struct_pb2

    from latent.catalog import Catalog, CollectionInfo
    from latent.models.encoders import Encoder, EncoderCache
    from latent.settings import Settings
    from service.indexes import IndexRegistry

SPOOL_BYTES = 4 * 2**20  # an upload up to this size stays in memory; a larger one goes to disk
MAX_URI_CHARS = 2000


@dataclass(frozen=True)
class Received:
    """An upload's bytes, spooled, with their count and SHA-256."""

    file: IO[bytes]
    size: int
    sha256: str


class LibraryServicer(pb_grpc.LibraryServiceServicer):
    """Implements ``assetsearch.v1.LibraryService``."""

    def __init__(
        self, settings: Settings, catalog: Catalog, indexes: IndexRegistry, encoders: EncoderCache
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.indexes = indexes
        self.encoders = encoders

    # -- assets -----------------------------------------------------------------------------

    def UpsertAsset(  # noqa: N802
        self, request_iterator: Iterator[pb.UpsertAssetRequest], context: grpc.ServicerContext
    ) -> pb.UpsertAssetResponse:
        """Decode, embed and write one uploaded file; the same uri replaces the asset."""
        header = _first_header(request_iterator, context)
        limit = int(self.settings.max_file_bytes)
        uri, metadata = _check_header(header, limit)
        collection = self._upload_collection(header.collection or self.settings.collection)
        encoder = self._encoder(collection.model_spec)
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            received = _receive(request_iterator, context, spool, limit, header.size_bytes)
            decoded = embed.decode(
                received.file, received.size, self.settings.max_image_pixels, uri
            )
        if isinstance(decoded, str):
            raise InvalidArgument(f"{uri}: {decoded}; nothing was written")
        write = AssetWrite(
            uri, "image", received.size, time.time_ns(), received.sha256, metadata=metadata
        )
        embed.set_image(write, decoded, encoder.encode_images([decoded.image])[0])
        stop_if_done(context)  # the client is gone: it would not learn of the write
        done = self.catalog.upsert(collection, write)
        return pb.UpsertAssetResponse(
            asset=asset_message(self.catalog.asset(done.asset_id)), created=done.created
        )

    def _upload_collection(self, name: str) -> CollectionInfo:
        """The collection an upload goes to; the server's default one is made on first use."""
        found = self.catalog.find_collection(name)
        if found is not None:
            return found
        if name != self.settings.collection:
            raise NotFound(
                f"collection {name!r} does not exist; create it first (CreateCollection, "
                "scope admin)"
            )
        encoder = self._encoder(self.settings.model)
        return self.catalog.ensure_collection(name, encoder.spec, encoder.dim)

    def DeleteAsset(  # noqa: N802
        self, request: pb.DeleteAssetRequest, context: grpc.ServicerContext
    ) -> pb.DeleteAssetResponse:
        """Mark an asset deleted (logged: it leaves every server's index at its next poll)."""
        asset_id = self._resolve(request.asset_id, request.uri, request.collection)
        self.catalog.delete_asset(asset_id)
        return pb.DeleteAssetResponse(asset_id=asset_id)

    def UpdateMetadata(  # noqa: N802
        self, request: pb.UpdateMetadataRequest, context: grpc.ServicerContext
    ) -> pb.UpdateMetadataResponse:
        """Replace or merge an asset's user metadata; filters see it at once."""
        asset_id = self._resolve(request.asset_id, request.uri, request.collection)
        metadata = _metadata(request.metadata)
        self.catalog.update_metadata(asset_id, metadata, merge=request.merge)
        return pb.UpdateMetadataResponse(asset=asset_message(self.catalog.asset(asset_id)))

    def _resolve(self, asset_id: int, uri: str, collection: str) -> int:
        """The id of the asset a request names, by id or by uri in a collection.

        Raises:
            InvalidArgument: it names neither, or a negative id.
            NotFound: no such asset or collection.
            PermissionDenied: the key may not use the asset's collection.
        """
        if asset_id < 0:
            raise InvalidArgument(f"asset_id must be a positive asset id, got {asset_id}")
        if asset_id:
            require_collection(self.catalog.asset(asset_id).collection)
            return asset_id
        if not uri:
            raise InvalidArgument("name the asset: give asset_id, or uri (and collection)")
        name = collection or self.settings.collection
        found = self.catalog.find_asset(self.catalog.collection(name).id, uri)
        if found is None:
            raise NotFound(f"collection {name!r} has no asset with uri {uri[:200]!r}")
        return found

    # -- collections --------------------------------------------------------------------------

    def CreateCollection(  # noqa: N802
        self, request: pb.CreateCollectionRequest, context: grpc.ServicerContext
    ) -> pb.CreateCollectionResponse:
        """Create an empty collection for a model (loaded here, to learn its dimension)."""
        name = check_collection_name(request.name)
        if self.catalog.find_collection(name) is not None:  # before loading a model for it
            raise AlreadyExists(f"collection {name!r} already exists")
        encoder = self._encoder(request.model_spec.strip() or self.settings.model)
        info = self.catalog.create_collection(name, encoder.spec, encoder.dim)
        return pb.CreateCollectionResponse(collection=collection_message(info, 0, 0))

    def DeleteCollection(  # noqa: N802
        self, request: pb.DeleteCollectionRequest, context: grpc.ServicerContext
    ) -> pb.DeleteCollectionResponse:
        """Delete a collection with its assets, vectors, directions, index and snapshot."""
        if not request.name:
            raise InvalidArgument("name the collection to delete")
        self.catalog.delete_collection(request.name)
        self.indexes.drop(request.name)
        return pb.DeleteCollectionResponse()

    def _encoder(self, spec: str) -> Encoder:
        """The encoder of a model spec, loaded once per process.

        Raises:
            InvalidArgument: the spec is malformed.
            FailedPrecondition: the model cannot be loaded (the loader's message says why).
        """
        try:
            return self.encoders.get(spec)
        except AssetSearchError:
            raise
        except Exception as exc:  # noqa: BLE001 - a model file torch or open_clip cannot read
            raise FailedPrecondition(
                f"model {spec!r} cannot be loaded: {type(exc).__name__}: {exc}"
            ) from exc


def _first_header(
    requests: Iterator[pb.UpsertAssetRequest], context: grpc.ServicerContext
) -> pb.UpsertAssetHeader:
    """The upload's header: its first message.

    Raises:
        InvalidArgument: the stream is empty or starts with a chunk.
    """
    first = next(_messages(requests, context), None)
    if first is None:
        raise InvalidArgument("the upload is empty: send a header message, then the chunks")
    if first.WhichOneof("part") != "header":
        raise InvalidArgument("the first message of an upload must be its header, not a chunk")
    return first.header


def _check_header(header: pb.UpsertAssetHeader, limit: int) -> tuple[str, dict[str, Any]]:
    """The uri and metadata of a valid header.

    Raises:
        InvalidArgument: no uri, a uri too long or with NUL, a negative or too large
            size, or metadata too large.
    """
    uri = header.uri
    if not uri:
        raise InvalidArgument("the upload needs a uri: the asset's id in your system")
    if len(uri) > MAX_URI_CHARS:
        raise InvalidArgument(f"uri is {len(uri)} characters; at most {MAX_URI_CHARS} allowed")
    if "\x00" in uri:
        raise InvalidArgument("uri must not contain NUL characters")
    if header.size_bytes < 0:
        raise InvalidArgument(f"size_bytes must not be negative, got {header.size_bytes}")
    if header.size_bytes > limit:
        raise InvalidArgument(_too_large(f"{header.size_bytes} bytes", limit))
    return uri, _metadata(header.metadata)


def _metadata(message: struct_pb2.Struct) -> dict[str, Any]:
    """User metadata from a Struct (a JSON object), at most ``MAX_METADATA_BYTES`` as JSON.

    Raises:
        InvalidArgument: it is larger than that.
    """
    values = json_format.MessageToDict(message)
    size = len(json.dumps(values, separators=(",", ":")).encode())
    if size > MAX_METADATA_BYTES:
        raise InvalidArgument(
            f"metadata is {size} bytes as JSON; at most {MAX_METADATA_BYTES} bytes allowed"
        )
    return values


def _receive(
    requests: Iterator[pb.UpsertAssetRequest],
    context: grpc.ServicerContext,
    spool: IO[bytes],
    limit: int,
    declared: int,
) -> Received:
    """Spool the upload's chunks, refusing it as soon as it passes the limit or declared size.

    Raises:
        InvalidArgument: a second header, more bytes than ``limit`` or than a declared
            size, or fewer than declared.
        DeadlineExceeded, Cancelled: the call ended before the upload did (nothing written).
    """
    digest = hashlib.sha256()
    size = 0
    for message in _messages(requests, context):
        if message.WhichOneof("part") != "chunk":
            raise InvalidArgument("an upload has one header, in its first message only")
        size += len(message.chunk)
        if size > limit:
            raise InvalidArgument(_too_large(f"more than {limit} bytes", limit))
        if declared and size > declared:
            raise InvalidArgument(f"the upload sent more than the {declared} bytes its header said")
        digest.update(message.chunk)
        spool.write(message.chunk)
    if declared and size != declared:
        raise InvalidArgument(
            f"the upload ended after {size} bytes; its header said {declared} (cut short?)"
        )
    spool.seek(0)
    return Received(spool, size, digest.hexdigest())


def _messages(
    requests: Iterator[pb.UpsertAssetRequest], context: grpc.ServicerContext
) -> Iterator[pb.UpsertAssetRequest]:
    """The stream's messages while the call lives; its end by deadline or cancel raises."""
    while True:
        stop_if_done(context)
        try:
            message = next(requests)
        except StopIteration:
            return
        except grpc.RpcError:  # the client went away mid-stream
            stop_if_done(context)
            raise Cancelled("the upload was cancelled; nothing was written") from None
        yield message


def _too_large(size: str, limit: int) -> str:
    return (
        f"file too large: {size} is above the {limit}-byte limit "
        f"(ASSETSEARCH_MAX_FILE_BYTES, max_file_bytes); nothing was written"
    )
