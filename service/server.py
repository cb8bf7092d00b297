"""Server start-up: the servicer, health, reflection and the error interceptor on one port."""

from __future__ import annotations

import logging
import threading
from concurrent import futures
from typing import TYPE_CHECKING

import faiss
import grpc
from assetsearch_client._pb.assetsearch.v1 import search_pb2 as pb
from assetsearch_client._pb.assetsearch.v1 import search_pb2_grpc as pb_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from latent.errors import AssetSearchError
from latent.models.encoders import EncoderCache
from latent.settings import Settings
from service.indexes import IndexRegistry
from service.interceptors import ErrorInterceptor
from service.servicer import SearchServicer

if TYPE_CHECKING:
    from latent.catalog import Catalog

log = logging.getLogger(__name__)

LOADER_JOIN_SECONDS = 300.0  # a real-size model loads in seconds; never hang a shutdown forever
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["SearchService"].full_name


class AssetSearchServer:
    """The gRPC server of one process; ``start`` returns the bound port."""

    def __init__(
        self, settings: Settings, catalog: Catalog, encoders: EncoderCache | None = None
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.encoders = encoders or EncoderCache(batch_size=settings.batch_size)
        self.health = health.HealthServicer()
        self._loader: threading.Thread | None = None
        self.indexes = IndexRegistry(
            catalog,
            settings.data_dir / "snapshots",
            settings.poll_interval,
            on_ready=self._set_serving,
            policy=settings.index_policy(),
        )
        self._server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=16, thread_name_prefix="grpc", initializer=self._init_worker
            ),
            interceptors=[ErrorInterceptor()],
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
        )
        pb_grpc.add_SearchServiceServicer_to_server(
            SearchServicer(settings, catalog, self.indexes, self.encoders), self._server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
        )
        self.port = 0
        self._set_serving(False)

    def _init_worker(self) -> None:
        # OpenMP's thread count is per calling thread: background index builds keep every
        # core, while a request searches on its own (a team per request oversubscribes the
        # cores and spin-waits when many requests run at once).
        if self.settings.search_threads:
            faiss.omp_set_num_threads(self.settings.search_threads)

    def _set_serving(self, ready: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            self.health.set(name, status)

    def start(
        self, host: str | None = None, port: int | None = None, wait_ready: bool = True
    ) -> int:
        """Bind, start serving and load the indexes; returns the bound port.

        With ``wait_ready`` the indexes are loaded before returning; health reports
        NOT_SERVING until they are.
        """
        address = f"{host or self.settings.host}:{self.settings.port if port is None else port}"
        self.port = self._server.add_insecure_port(address)
        if not self.port:
            raise AssetSearchError(f"cannot listen on {address} (port in use?)")
        self._server.start()
        self._loader = threading.Thread(target=self._load, name="index-load", daemon=True)
        self._loader.start()
        if wait_ready:
            self._loader.join()
        return self.port

    def _load(self) -> None:
        self.indexes.start()
        for info in self.catalog.collections():
            try:
                self.encoders.get(info.model_spec)
            except AssetSearchError as exc:
                log.warning("collection %s: model not loaded: %s", info.name, exc)

    def wait(self) -> None:
        """Block until the server stops."""
        self._server.wait_for_termination()

    def stop(self, grace: float = 2.0) -> None:
        """Stop accepting calls, finish those in flight, snapshot the indexes."""
        self._set_serving(False)
        self._server.stop(grace).wait()
        if self._loader is not None:
            # A process that exits while this thread is inside torch (a model still loading)
            # aborts ("terminate called without an active exception", exit 134) and writes no
            # snapshot: let the load finish first.
            self._loader.join(timeout=LOADER_JOIN_SECONDS)
        self.indexes.stop(snapshot=True)
