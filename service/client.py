"""A small typed client of the assetsearch gRPC API, used by the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
import numpy as np

from latent.algebra import Term
from service._pb.assetsearch.v1 import search_pb2 as pb
from service._pb.assetsearch.v1 import search_pb2_grpc as pb_grpc
from service.convert import term_message


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
    ) -> pb.SearchResponse:
        """Search by exactly one of text, image bytes, asset id, vector, terms or expression.

        Raises:
            ValueError: not exactly one query was given.
            grpc.RpcError: the server refused the call (its status says why).
        """
        given = [x is not None for x in (text, image, asset_id, vector, terms, expression)]
        if sum(given) != 1:
            raise ValueError(
                "give exactly one of text, image, asset_id, vector, terms or expression"
            )
        if terms is not None:
            request = pb.SearchRequest(
                collection=collection, terms=[term_message(t) for t in terms], top_k=top_k
            )
            return self._stub.Search(request, timeout=self.timeout)
        if expression is not None:
            request = pb.SearchRequest(collection=collection, expression=expression, top_k=top_k)
            return self._stub.Search(request, timeout=self.timeout)
        if text is not None:
            query = pb.QueryTerm(text=text)
        elif image is not None:
            query = pb.QueryTerm(image=image)
        elif asset_id is not None:
            query = pb.QueryTerm(asset_id=asset_id)
        else:
            query = pb.QueryTerm(
                vector=pb.Vector(values=np.asarray(vector, dtype=np.float32).ravel().tolist())
            )
        request = pb.SearchRequest(collection=collection, query=query, top_k=top_k)
        return self._stub.Search(request, timeout=self.timeout)

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
