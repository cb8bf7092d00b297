"""A small typed client of the assetsearch gRPC API, used by the CLI."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import grpc
import numpy as np

from latent.algebra import Term
from latent.filters import Filter
from service._pb.assetsearch.v1 import search_pb2 as pb
from service._pb.assetsearch.v1 import search_pb2_grpc as pb_grpc
from service.convert import filter_message, struct, term_message

QueryLike = str | Sequence[Term]
IMPORT_BATCH = 4096  # rows per ImportVectors call (8 MiB of 512-d float32)


def query_message(query: QueryLike) -> pb.Query:
    """A Query message from an expression string or a list of terms."""
    if isinstance(query, str):
        return pb.Query(expression=query)
    return pb.Query(terms=[term_message(t) for t in query])


def example_message(term: Term) -> pb.DirectionExample:
    """A direction example from a text, image or asset term."""
    if term.kind == "text":
        return pb.DirectionExample(text=term.text)
    if term.kind == "image":
        return pb.DirectionExample(image=term.image)
    if term.kind == "asset":
        return pb.DirectionExample(asset_id=term.asset_id)
    raise ValueError(f"a direction example is text, image or asset, not {term.kind}")


class SearchClient:
    """Calls ``assetsearch.v1.SearchService`` at ``address`` (HOST:PORT)."""

    def __init__(self, address: str, timeout: float = 60.0) -> None:
        self.address = address
        self.timeout = timeout
        self._channel = grpc.insecure_channel(
            address, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]
        )
        self._stub = pb_grpc.SearchServiceStub(self._channel)

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
        vector: Sequence[float] | np.ndarray | None = None,
        terms: Sequence[Term] | None = None,
        expression: str | None = None,
        top_k: int = 10,
        collection: str = "",
        explain: bool = False,
        diversity: float = 0.0,
        dedup_threshold: float = 0.0,
        snap: bool = False,
        filter: Filter | None = None,  # noqa: A002 - the API's own word
        page_token: str = "",
    ) -> pb.SearchResponse:
        """Search by exactly one of text, image bytes, asset id, vector, terms or expression.

        ``filter`` restricts the hits; ``page_token`` (a response's ``next_page_token``,
        with the same other arguments) returns the next page.

        Raises:
            ValueError: not exactly one query was given.
            grpc.RpcError: the server refused the call (its status says why).
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
            request.filter.CopyFrom(filter_message(filter))
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
            request.query.vector.values.extend(
                np.asarray(vector, dtype=np.float32).ravel().tolist()
            )
        return self._stub.Search(request, timeout=self.timeout)

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
        filter: Filter | None = None,  # noqa: A002
    ) -> Iterator[pb.StepResult]:
        """Stream one result set per step from ``source`` to ``target``."""
        request = pb.InterpolateRequest(
            collection=collection,
            source=query_message(source),
            target=query_message(target),
            steps=steps,
            method=method,
            top_k=top_k,
            dedupe=dedupe,
            filter=filter_message(filter) if filter is not None else None,
        )
        return iter(self._stub.Interpolate(request, timeout=self.timeout))

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
        filter: Filter | None = None,  # noqa: A002
    ) -> Iterator[pb.StepResult]:
        """Stream one result set per step along a direction (exactly one of the three)."""
        if sum(x is not None for x in (named, texts, principal_component)) != 1:
            raise ValueError("give exactly one of named, texts or principal_component")
        request = pb.TraverseRequest(
            collection=collection,
            origin=query_message(origin),
            step=step,
            steps=steps,
            top_k=top_k,
            dedupe=dedupe,
            filter=filter_message(filter) if filter is not None else None,
        )
        if named is not None:
            request.named = named
        elif texts is not None:
            request.texts.CopyFrom(pb.TextPair(source=texts[0], target=texts[1]))
        else:
            request.principal_component = int(principal_component or 0)
        return iter(self._stub.Traverse(request, timeout=self.timeout))

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
            seed = [Term("asset", asset_id=seed)]
        request = pb.VariationsRequest(
            collection=collection,
            seed=query_message(seed),
            n=n,
            radius=radius,
            min_distance=min_distance,
            diversity=diversity,
        )
        return self._stub.Variations(request, timeout=self.timeout)

    def create_direction(
        self,
        name: str,
        positive: Sequence[Term] = (),
        negative: Sequence[Term] = (),
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
        return self._stub.CreateDirection(request, timeout=self.timeout)

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
        return self._stub.Project(request, timeout=self.timeout)

    def list_directions(self, collection: str = "") -> list[pb.Direction]:
        """Every named direction of a collection."""
        request = pb.ListDirectionsRequest(collection=collection)
        return list(self._stub.ListDirections(request, timeout=self.timeout).directions)

    def get_direction(self, name: str, collection: str = "") -> pb.Direction:
        """One named direction."""
        request = pb.GetDirectionRequest(collection=collection, name=name)
        return self._stub.GetDirection(request, timeout=self.timeout)

    def delete_direction(self, name: str, collection: str = "") -> None:
        """Delete a named direction."""
        self._stub.DeleteDirection(
            pb.DeleteDirectionRequest(collection=collection, name=name), timeout=self.timeout
        )

    def import_vectors(
        self,
        ids: Sequence[str],
        vectors: np.ndarray,
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
            grpc.RpcError: the server refused a batch (its status says why).
        """
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
            done = self._stub.ImportVectors(request, timeout=self.timeout)
            added, replaced = total.added + done.added, total.replaced + done.replaced
            total.CopyFrom(done)
            total.added, total.replaced = added, replaced
        return total

    def get_asset(self, asset_id: int) -> pb.Asset:
        """One asset by id."""
        return self._stub.GetAsset(pb.GetAssetRequest(asset_id=asset_id), timeout=self.timeout)

    def list_collections(self) -> list[pb.Collection]:
        """Every collection the server knows."""
        return list(
            self._stub.ListCollections(
                pb.ListCollectionsRequest(), timeout=self.timeout
            ).collections
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the channel connects.

        Raises:
            grpc.FutureTimeoutError: the server did not answer in time.
        """
        grpc.channel_ready_future(self._channel).result(timeout=timeout)
