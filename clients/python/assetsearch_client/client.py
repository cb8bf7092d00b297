"""The typed client of the assetsearch gRPC API; every failed call raises our own errors."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import grpc
from google.protobuf import struct_pb2
from google.protobuf.message import Message

from assetsearch_client import terms as t
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb
from assetsearch_client._pb.assetsearch.v1 import search_pb2_grpc as pb_grpc
from assetsearch_client.errors import Unavailable, from_rpc_error

QueryLike = str | Sequence[t.Term]
"""An expression string (``'"red" + asset:4'``) or a list of terms."""
IMPORT_BATCH = 4096  # rows per ImportVectors call (8 MiB of 512-d float32)
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
UPLOAD_CHUNK = 1024 * 1024  # bytes per UpsertAsset chunk message
_Reply = TypeVar("_Reply", bound=Message)


def term_message(term: t.Term) -> pb.QueryTerm:
    """The QueryTerm message of a term."""
    match term:
        case t.Text(text=text):
            return pb.QueryTerm(text=text, weight=term.weight)
        case t.Image(data=data):
            return pb.QueryTerm(image=data, weight=term.weight)
        case t.Asset(asset_id=asset_id):
            return pb.QueryTerm(asset_id=asset_id, weight=term.weight)
        case t.Direction(name=name):
            return pb.QueryTerm(direction=name, weight=term.weight)
        case t.Vector(values=values):
            return pb.QueryTerm(vector=pb.Vector(values=list(values)), weight=term.weight)


def query_message(query: QueryLike) -> pb.Query:
    """A Query message from an expression string or a list of terms."""
    if isinstance(query, str):
        return pb.Query(expression=query)
    return pb.Query(terms=[term_message(t) for t in query])


def example_message(term: t.Example) -> pb.DirectionExample:
    """A direction example from a text, image or asset term.

    Raises:
        TypeError: the term is a vector or a direction.
    """
    match term:
        case t.Text(text=text):
            return pb.DirectionExample(text=text)
        case t.Image(data=data):
            return pb.DirectionExample(image=data)
        case t.Asset(asset_id=asset_id):
            return pb.DirectionExample(asset_id=asset_id)
    raise TypeError(f"a direction example is a text, image or asset, not {t.describe(term)}")


def _floats(values: Sequence[float]) -> list[float]:
    """The numbers as a flat list of floats; a numpy array (any shape) converts in C."""
    ravel = getattr(values, "ravel", None)
    return ravel().tolist() if ravel is not None else [float(v) for v in values]


def struct(values: dict[str, Any] | None) -> struct_pb2.Struct:
    """A protobuf Struct from a JSON-like dict."""
    out = struct_pb2.Struct()
    out.update(values or {})
    return out


@dataclass(frozen=True)
class Tls:
    """TLS for the channel: the CA to trust and, for mutual TLS, a client certificate.

    Args:
        ca: PEM of the CA(s) the server's certificate must chain to; None trusts the
            system's roots.
        cert: PEM of the client certificate chain (mutual TLS), with ``key``.
        key: PEM of the client certificate's private key.
        server_name: The name the server's certificate must carry, when it differs
            from the host of the address (an IP address, a tunnel).
    """

    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None
    server_name: str | None = None

    @classmethod
    def from_files(
        cls,
        ca: str | Path | None = None,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        server_name: str | None = None,
    ) -> Tls:
        """Read the PEM files; a path that is None stays None.

        Raises:
            ValueError: only one of ``cert`` and ``key`` is given.
            OSError: a file cannot be read.
        """
        if (cert is None) != (key is None):
            raise ValueError("a client certificate needs both its certificate and its key")

        def read(path: str | Path | None) -> bytes | None:
            return None if path is None else Path(path).read_bytes()

        return cls(read(ca), read(cert), read(key), server_name)


class _Stub:
    """The generated stubs with every failure mapped to our error tree, typed by reply.

    Every call carries the API key (``authorization: Bearer ...``) when there is one.
    """

    def __init__(self, channel: grpc.Channel, metadata: tuple[tuple[str, str], ...]) -> None:
        self._calls: dict[str, Any] = {}
        for stub in (
            pb_grpc.SearchServiceStub(channel),
            pb_grpc.LibraryServiceStub(channel),
            pb_grpc.JobServiceStub(channel),
        ):
            self._calls.update((k, v) for k, v in vars(stub).items() if not k.startswith("_"))
        self._metadata = metadata

    def unary(self, method: str, request: Message, reply: type[_Reply], timeout: float) -> _Reply:
        """Call a unary RPC; ``reply`` is its response type (the generated stub is untyped)."""
        try:
            answer = self._calls[method](request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
        return cast(_Reply, answer)

    def upload(
        self, method: str, requests: Iterable[Message], reply: type[_Reply], timeout: float
    ) -> _Reply:
        """Call a client-streaming RPC with the messages of ``requests``."""
        try:
            answer = self._calls[method](requests, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc
        return cast(_Reply, answer)

    def stream(
        self, method: str, request: Message, reply: type[_Reply], timeout: float | None
    ) -> Iterator[_Reply]:
        """Call a server-streaming RPC; errors are raised while iterating."""
        try:
            yield from self._calls[method](request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc


class SearchClient:
    """Calls the assetsearch API at ``address`` (HOST:PORT).

    Args:
        address: HOST:PORT of the server.
        timeout: Deadline of each call in seconds (a stream's deadline covers all of it).
        api_key: Sent with every call as ``authorization: Bearer KEY``; a server with
            auth on refuses calls without one (UNAUTHENTICATED).
        tls: Connect with TLS (and a client certificate for mutual TLS); None: plaintext.
        max_message_bytes: Largest message either way; keep it at or below the server's.
    """

    def __init__(
        self,
        address: str,
        timeout: float = 60.0,
        *,
        api_key: str | None = None,
        tls: Tls | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.max_message_bytes = max_message_bytes
        options: list[tuple[str, Any]] = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        if tls is None:
            self._channel = grpc.insecure_channel(address, options=options)
        else:
            if tls.server_name:
                options.append(("grpc.ssl_target_name_override", tls.server_name))
            credentials = grpc.ssl_channel_credentials(tls.ca, tls.key, tls.cert)
            self._channel = grpc.secure_channel(address, credentials, options=options)
        metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self._stub = _Stub(self._channel, metadata)

    @property
    def channel(self) -> grpc.Channel:
        """The client's channel, for other services of the same server (health, reflection)."""
        return self._channel

    def __enter__(self) -> SearchClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def search(
        self,
        *,
        text: str | None = None,
        image: bytes | None = None,
        asset_id: int | None = None,
        vector: Sequence[float] | None = None,
        terms: Sequence[t.Term] | None = None,
        expression: str | None = None,
        top_k: int = 10,
        collection: str = "",
        explain: bool = False,
        diversity: float = 0.0,
        dedup_threshold: float = 0.0,
        snap: bool = False,
        filter: pb.Filter | None = None,  # noqa: A002 - the API's own word
        page_token: str = "",
    ) -> pb.SearchResponse:
        """Search by exactly one of text, image bytes, asset id, vector, terms or expression.

        ``filter`` restricts the hits; ``page_token`` (a response's ``next_page_token``,
        with the same other arguments) returns the next page.

        Raises:
            ValueError: not exactly one query was given.
            AssetSearchError: the server refused the call (the subclass names its status).
        """
        given = [x is not None for x in (text, image, asset_id, vector, terms, expression)]
        if sum(given) != 1:
            raise ValueError(
                "give exactly one of text, image, asset_id, vector, terms or expression"
            )
        request = pb.SearchRequest(
            collection=collection,
            top_k=top_k,
            explain=explain,
            diversity=diversity,
            dedup_threshold=dedup_threshold,
            snap=snap,
            page_token=page_token,
        )
        if filter is not None:
            request.filter.CopyFrom(filter)
        if terms is not None:
            request.terms.extend(term_message(t) for t in terms)
        elif expression is not None:
            request.expression = expression
        elif text is not None:
            request.query.text = text
        elif image is not None:
            request.query.image = image
        elif asset_id is not None:
            request.query.asset_id = asset_id
        else:
            request.query.vector.values.extend(_floats(vector))  # type: ignore[arg-type]
        return self._stub.unary("Search", request, pb.SearchResponse, self.timeout)

    def interpolate(
        self,
        source: QueryLike,
        target: QueryLike,
        *,
        steps: int = 5,
        method: str = "slerp",
        top_k: int = 10,
        dedupe: bool = False,
        collection: str = "",
        filter: pb.Filter | None = None,  # noqa: A002
    ) -> Iterator[pb.InterpolateResponse]:
        """Stream one result set per step from ``source`` to ``target``.

        Raises:
            AssetSearchError: the server refused the call (raised while iterating).
        """
        request = pb.InterpolateRequest(
            collection=collection,
            source=query_message(source),
            target=query_message(target),
            steps=steps,
            method=method,
            top_k=top_k,
            dedupe=dedupe,
            filter=filter,
        )
        return self._stub.stream("Interpolate", request, pb.InterpolateResponse, self.timeout)

    def traverse(
        self,
        origin: QueryLike,
        *,
        named: str | None = None,
        texts: tuple[str, str] | None = None,
        principal_component: int | None = None,
        step: float = 0.25,
        steps: int = 5,
        top_k: int = 10,
        dedupe: bool = False,
        collection: str = "",
        filter: pb.Filter | None = None,  # noqa: A002
    ) -> Iterator[pb.TraverseResponse]:
        """Stream one result set per step along a direction (exactly one of the three).

        Raises:
            ValueError: not exactly one of named, texts and principal_component was given.
            AssetSearchError: the server refused the call (raised while iterating).
        """
        if sum(x is not None for x in (named, texts, principal_component)) != 1:
            raise ValueError("give exactly one of named, texts or principal_component")
        request = pb.TraverseRequest(
            collection=collection,
            origin=query_message(origin),
            step=step,
            steps=steps,
            top_k=top_k,
            dedupe=dedupe,
            filter=filter,
        )
        if named is not None:
            request.named = named
        elif texts is not None:
            request.texts.CopyFrom(pb.TextPair(source=texts[0], target=texts[1]))
        else:
            request.principal_component = int(principal_component or 0)
        return self._stub.stream("Traverse", request, pb.TraverseResponse, self.timeout)

    def variations(
        self,
        seed: QueryLike | int,
        *,
        n: int = 8,
        radius: float | None = None,
        min_distance: float | None = None,
        diversity: float | None = None,
        collection: str = "",
    ) -> pb.VariationsResponse:
        """Assets a small, distinct move away from ``seed`` (an asset id or a query).

        ``None`` leaves a setting to the server (radius: from the collection's typical
        neighbour distance; min_distance 0.02; diversity 0.3).
        """
        if isinstance(seed, int):
            seed = [t.Asset(seed)]
        request = pb.VariationsRequest(
            collection=collection,
            seed=query_message(seed),
            n=n,
            radius=radius,
            min_distance=min_distance,
            diversity=diversity,
        )
        return self._stub.unary("Variations", request, pb.VariationsResponse, self.timeout)

    def create_direction(
        self,
        name: str,
        positive: Sequence[t.Example] = (),
        negative: Sequence[t.Example] = (),
        orthogonal_to: Sequence[str] = (),
        collection: str = "",
    ) -> pb.Direction:
        """Store a named direction from example terms (text, image or asset)."""
        request = pb.CreateDirectionRequest(
            collection=collection,
            name=name,
            positive=[example_message(t) for t in positive],
            negative=[example_message(t) for t in negative],
            orthogonal_to=list(orthogonal_to),
        )
        reply = pb.CreateDirectionResponse
        return self._stub.unary("CreateDirection", request, reply, self.timeout).direction

    def project(
        self,
        *,
        method: str = "pca",
        max_points: int = 5000,
        color_by: str = "",
        path: tuple[QueryLike, QueryLike] | None = None,
        path_steps: int = 8,
        collection: str = "",
    ) -> pb.ProjectResponse:
        """A 2-D map of a collection, with an optional interpolation path."""
        request = pb.ProjectRequest(
            collection=collection,
            method=method,
            max_points=max_points,
            color_by=color_by,
            path_steps=path_steps,
        )
        if path is not None:
            request.path_source.CopyFrom(query_message(path[0]))
            request.path_target.CopyFrom(query_message(path[1]))
        return self._stub.unary("Project", request, pb.ProjectResponse, self.timeout)

    def list_directions(self, collection: str = "") -> list[pb.Direction]:
        """Every named direction of a collection."""
        request = pb.ListDirectionsRequest(collection=collection)
        reply = pb.ListDirectionsResponse
        return list(self._stub.unary("ListDirections", request, reply, self.timeout).directions)

    def get_direction(self, name: str, collection: str = "") -> pb.Direction:
        """One named direction."""
        request = pb.GetDirectionRequest(collection=collection, name=name)
        reply = pb.GetDirectionResponse
        return self._stub.unary("GetDirection", request, reply, self.timeout).direction

    def delete_direction(self, name: str, collection: str = "") -> None:
        """Delete a named direction."""
        request = pb.DeleteDirectionRequest(collection=collection, name=name)
        self._stub.unary("DeleteDirection", request, pb.DeleteDirectionResponse, self.timeout)

    def import_vectors(
        self,
        ids: Sequence[str],
        vectors: Any,
        *,
        collection: str = "",
        model_spec: str = "",
        metadata: Sequence[dict[str, Any]] | None = None,
        batch_size: int = IMPORT_BATCH,
    ) -> pb.ImportVectorsResponse:
        """Import externally computed vectors in batches; returns the summed counts.

        Each batch is one call and one transaction: when a batch is refused, the batches
        before it stay imported (re-importing them later just replaces their vectors).

        Raises:
            ValueError: ``vectors`` is not 2-D.
            AssetSearchError: the server refused a batch (the subclass names its status).
        """
        import numpy as np  # optional: only this call needs it

        matrix = np.ascontiguousarray(vectors, dtype="<f4")
        if matrix.ndim != 2:
            raise ValueError(f"vectors must be 2-D (rows x dim), got shape {matrix.shape}")
        total = pb.ImportVectorsResponse()
        for start in range(0, max(len(ids), 1), batch_size):
            end = start + batch_size
            request = pb.ImportVectorsRequest(
                collection=collection,
                model_spec=model_spec,
                ids=list(ids[start:end]),
                dim=matrix.shape[1],
                vectors=matrix[start:end].tobytes(),
                metadata=[struct(m) for m in metadata[start:end]] if metadata else [],
            )
            reply = pb.ImportVectorsResponse
            done = self._stub.unary("ImportVectors", request, reply, self.timeout)
            added, replaced = total.added + done.added, total.replaced + done.replaced
            total.CopyFrom(done)
            total.added, total.replaced = added, replaced
        return total

    def get_asset(self, asset_id: int) -> pb.Asset:
        """One asset by id, whatever its state.

        Raises:
            NotFound: no asset has that id.
            InvalidArgument: the id is not positive.
        """
        request = pb.GetAssetRequest(asset_id=asset_id)
        return self._stub.unary("GetAsset", request, pb.GetAssetResponse, self.timeout).asset

    def list_collections(self) -> list[pb.Collection]:
        """Every collection the server knows."""
        request = pb.ListCollectionsRequest()
        reply = pb.ListCollectionsResponse
        return list(self._stub.unary("ListCollections", request, reply, self.timeout).collections)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the channel connects.

        Raises:
            Unavailable: the server did not answer in time.
        """
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise Unavailable(f"no assetsearch server answered at {self.address}") from None

    # -- the write API: LibraryService ------------------------------------------------------

    def upsert_asset(
        self,
        data: bytes | IO[bytes] | Path,
        uri: str,
        *,
        collection: str = "",
        metadata: dict[str, Any] | None = None,
        chunk_size: int = UPLOAD_CHUNK,
    ) -> pb.UpsertAssetResponse:
        """Upload one file (bytes, an open binary file or a path) as the asset ``uri``.

        The file is streamed in chunks of ``chunk_size``, so it may exceed the message
        limit. The same uri again replaces the asset; it is searchable after the
        server's next poll.

        Raises:
            InvalidArgument: the bytes cannot be decoded (the message says why) or the
                header is invalid; nothing is written.
            PermissionDenied: the key lacks scope "write" or this collection.
        """
        if isinstance(data, Path):
            with data.open("rb") as f:
                return self.upsert_asset(
                    f, uri, collection=collection, metadata=metadata, chunk_size=chunk_size
                )
        size = len(data) if isinstance(data, bytes) else _remaining(data)
        header = pb.UpsertAssetHeader(
            collection=collection, uri=uri, metadata=struct(metadata), size_bytes=size
        )
        requests = _upload_messages(header, data, chunk_size)
        reply = pb.UpsertAssetResponse
        return self._stub.upload("UpsertAsset", requests, reply, self.timeout)

    def delete_asset(self, asset_id: int = 0, *, uri: str = "", collection: str = "") -> int:
        """Delete an asset by id, or by uri within a collection; returns its id.

        Raises:
            NotFound: no such asset.
        """
        request = pb.DeleteAssetRequest(asset_id=asset_id, uri=uri, collection=collection)
        reply = pb.DeleteAssetResponse
        return self._stub.unary("DeleteAsset", request, reply, self.timeout).asset_id

    def update_metadata(
        self,
        metadata: dict[str, Any],
        asset_id: int = 0,
        *,
        uri: str = "",
        collection: str = "",
        merge: bool = False,
    ) -> pb.Asset:
        """Replace (or, with ``merge``, merge into) an asset's user metadata."""
        request = pb.UpdateMetadataRequest(
            asset_id=asset_id,
            uri=uri,
            collection=collection,
            metadata=struct(metadata),
            merge=merge,
        )
        reply = pb.UpdateMetadataResponse
        return self._stub.unary("UpdateMetadata", request, reply, self.timeout).asset

    def create_collection(self, name: str, model_spec: str = "") -> pb.Collection:
        """Create an empty collection (the server's default model unless one is named).

        Raises:
            AlreadyExists: the name is taken.
        """
        request = pb.CreateCollectionRequest(name=name, model_spec=model_spec)
        reply = pb.CreateCollectionResponse
        return self._stub.unary("CreateCollection", request, reply, self.timeout).collection

    def delete_collection(self, name: str) -> None:
        """Delete a collection with everything in it (scope "admin")."""
        request = pb.DeleteCollectionRequest(name=name)
        self._stub.unary("DeleteCollection", request, pb.DeleteCollectionResponse, self.timeout)

    # -- index jobs: JobService -------------------------------------------------------------

    def start_index_job(
        self, paths: Sequence[str], *, collection: str = "", retry_failed: bool = False
    ) -> pb.IndexJob:
        """Start indexing server-side paths (under the server's library roots)."""
        request = pb.StartIndexJobRequest(
            collection=collection, paths=list(paths), retry_failed=retry_failed
        )
        reply = pb.StartIndexJobResponse
        return self._stub.unary("StartIndexJob", request, reply, self.timeout).job

    def watch_index_job(self, job_id: int, timeout: float | None = None) -> Iterator[pb.IndexJob]:
        """The job now and at each change until it ends (``timeout``: None waits for it)."""
        request = pb.WatchIndexJobRequest(id=job_id)
        for update in self._stub.stream(
            "WatchIndexJob", request, pb.WatchIndexJobResponse, timeout
        ):
            yield update.job

    def cancel_index_job(self, job_id: int) -> pb.IndexJob:
        """Ask a job to stop after its current batch."""
        request = pb.CancelIndexJobRequest(id=job_id)
        reply = pb.CancelIndexJobResponse
        return self._stub.unary("CancelIndexJob", request, reply, self.timeout).job

    def resume_index_job(self, job_id: int) -> pb.IndexJob:
        """Run a cancelled, interrupted or failed job again, skipping files already done."""
        request = pb.ResumeIndexJobRequest(id=job_id)
        reply = pb.ResumeIndexJobResponse
        return self._stub.unary("ResumeIndexJob", request, reply, self.timeout).job

    def list_index_jobs(self, collection: str = "", limit: int = 0) -> list[pb.IndexJob]:
        """The newest jobs, newest first."""
        request = pb.ListIndexJobsRequest(collection=collection, limit=limit)
        reply = pb.ListIndexJobsResponse
        return list(self._stub.unary("ListIndexJobs", request, reply, self.timeout).jobs)


def _remaining(f: IO[bytes]) -> int:
    """Bytes left in a seekable file from its position; 0 (unknown) when it cannot seek."""
    try:
        here = f.tell()
        end = f.seek(0, 2)
        f.seek(here)
    except (OSError, ValueError):
        return 0
    return end - here


def _upload_messages(
    header: pb.UpsertAssetHeader, data: bytes | IO[bytes], chunk_size: int
) -> Iterable[pb.UpsertAssetRequest]:
    yield pb.UpsertAssetRequest(header=header)
    if isinstance(data, bytes):
        for start in range(0, len(data), chunk_size):
            yield pb.UpsertAssetRequest(chunk=data[start : start + chunk_size])
        return
    while chunk := data.read(chunk_size):
        yield pb.UpsertAssetRequest(chunk=chunk)
