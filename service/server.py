"""Server start-up: the servicers, health, reflection and the interceptor chain on one port."""

from __future__ import annotations

import logging
import threading
from concurrent import futures
from typing import TYPE_CHECKING, Any

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
SERVICE_NAMES = tuple(s.full_name for s in pb.DESCRIPTOR.services_by_name.values())


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
            interceptors=self._interceptors(),
            options=self._options(),
        )
        self._add_services()
        self.port = 0
        self._set_serving(False)

    def _interceptors(self) -> list[grpc.ServerInterceptor]:
        """The chain every call passes, outermost first (DESIGN.md, "Processes")."""
        return [ErrorInterceptor()]

    def _options(self) -> list[tuple[str, Any]]:
        limit = int(self.settings.max_message_bytes)
        return [
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
        ]

    def _add_services(self) -> None:
        search = SearchServicer(self.settings, self.catalog, self.indexes, self.encoders)
        pb_grpc.add_SearchServiceServicer_to_server(search, self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
        )

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
        for name in ("", *SERVICE_NAMES):
            self.health.set(name, status)

    def _bind(self, address: str) -> int:
        """Add the listening port; returns the bound port (0 when it cannot bind)."""
        return self._server.add_insecure_port(address)

    def start(
        self, host: str | None = None, port: int | None = None, wait_ready: bool = True
    ) -> int:
        """Bind, start serving and load the indexes; returns the bound port.

        With ``wait_ready`` the indexes are loaded before returning; health reports
        NOT_SERVING until they are.
        """
        address = f"{host or self.settings.host}:{self.settings.port if port is None else port}"
        self.port = self._bind(address)
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
