"""Server start-up: the servicers, health, reflection and the interceptor chain on one port."""

from __future__ import annotations

import logging
import threading
import time
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
from service.admission import Admission, AdmissionInterceptor, worker_count
from service.auth import AuthInterceptor, KeyCache, tls_credentials
from service.indexes import IndexRegistry
from service.interceptors import ErrorInterceptor
from service.job_runner import JobRunner
from service.jobs import JobServicer
from service.library import LibraryServicer
from service.metrics import Metrics
from service.observe import ObserveInterceptor
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
                # Above the in-flight limit: a call waiting for a thread would queue unseen.
                max_workers=worker_count(settings),
                thread_name_prefix="grpc",
                initializer=self._init_worker,
            ),
            interceptors=self._interceptors(),
            options=self._options(),
        )
        self._add_services()
        self.port = 0
        self._set_serving(False)

    def _interceptors(self) -> list[grpc.ServerInterceptor]:
        """The chain every call passes, outermost first (DESIGN.md, "Processes")."""
        keys = self.catalog.keys
        self._auth = AuthInterceptor(
            KeyCache(keys.snapshot, keys.lookup, self.settings.poll_interval),
            self.settings.collection,
        )
        self.admission = Admission(self.settings.max_in_flight)
        self.metrics = Metrics(self.admission, self.indexes, self.catalog, self.encoders)
        self.metrics_port: int | None = None  # the bound /metrics port once started
        observe = ObserveInterceptor(self.metrics, self.settings.collection)
        admission = AdmissionInterceptor(self.admission)
        return [observe, self._auth, admission, ErrorInterceptor()]

    def _options(self) -> list[tuple[str, Any]]:
        limit = int(self.settings.max_message_bytes)
        return [
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
        ]

    def _add_services(self) -> None:
        search = SearchServicer(self.settings, self.catalog, self.indexes, self.encoders)
        pb_grpc.add_SearchServiceServicer_to_server(search, self._server)
        library = LibraryServicer(self.settings, self.catalog, self.indexes, self.encoders)
        pb_grpc.add_LibraryServiceServicer_to_server(library, self._server)
        self.jobs = JobRunner(self.settings, self.catalog, self.encoders)
        jobs = JobServicer(self.settings, self.catalog, self.encoders, self.jobs)
        pb_grpc.add_JobServiceServicer_to_server(jobs, self._server)
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
        """Add the listening port, with TLS when configured; returns the bound port (0: none)."""
        credentials = tls_credentials(self.settings)
        if credentials is None:
            return self._server.add_insecure_port(address)
        return self._server.add_secure_port(address, credentials)

    def start(
        self, host: str | None = None, port: int | None = None, wait_ready: bool = True
    ) -> int:
        """Bind, start serving and load the indexes; returns the bound port.

        With ``wait_ready`` the indexes are loaded before returning; health reports
        NOT_SERVING until they are.
        """
        host = host or self.settings.host
        self._auth.configure(self.settings, host)  # refuses --auth off outside loopback
        address = f"{host}:{self.settings.port if port is None else port}"
        self.port = self._bind(address)
        if not self.port:
            raise AssetSearchError(f"cannot listen on {address} (port in use?)")
        self.jobs.start(self.settings.instance or f"{host}:{self.port}")  # before any call
        self._server.start()
        self.metrics_port = self.metrics.serve(host, self.settings.metrics_port)
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

    def stop(self, grace: float | None = None) -> None:
        """Stop accepting calls, finish those in flight, snapshot the indexes.

        Health turns NOT_SERVING at once and new calls get UNAVAILABLE, while the calls in
        flight (streams included) have ``grace`` seconds (default ``shutdown_grace``) to
        finish; any still running then are cancelled.
        """
        deadline = time.monotonic() + (self.settings.shutdown_grace if grace is None else grace)
        self._set_serving(False)
        self.health.enter_graceful_shutdown()  # an index load finishing now stays NOT_SERVING
        self.admission.drain()
        self.jobs.stop()  # its running job ends INTERRUPTED after the current batch
        if not self.admission.wait_idle(deadline - time.monotonic()):
            left = self.admission.in_flight
            log.warning("%d calls still in flight after the grace period: cancelled", left)
        self._server.stop(0).wait()  # what is left is health checks (and refusals)
        if self._loader is not None:
            # A process that exits while this thread is inside torch (a model still loading)
            # aborts ("terminate called without an active exception", exit 134) and writes no
            # snapshot: let the load finish first.
            self._loader.join(timeout=LOADER_JOIN_SECONDS)
        self.indexes.stop(snapshot=True)
        self.metrics.close()
