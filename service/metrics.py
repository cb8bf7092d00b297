"""Prometheus metrics of one server, on a private registry, served on ``metrics_port``.

Calls (by method and status code) and their latency are recorded by ``service.observe``;
encoder forward passes through ``EncoderCache.batch_hooks``; everything else is read at
scrape time by ``ServerCollector``: calls in flight and refused (admission), each
collection's index size, generation seq and change-log lag, and the progress of the
index jobs running now.

=======================================  =========  ===================================
metric                                   type       labels
=======================================  =========  ===================================
assetsearch_calls_total                  counter    method, code
assetsearch_call_duration_seconds        histogram  method
assetsearch_calls_in_flight              gauge
assetsearch_max_in_flight                gauge
assetsearch_calls_refused_total          counter
assetsearch_index_size                   gauge      collection
assetsearch_index_seq                    gauge      collection
assetsearch_catalog_head_seq             gauge      collection
assetsearch_index_lag                    gauge      collection
assetsearch_encoder_batch_seconds        histogram  model, kind
assetsearch_encoder_batch_size           histogram  model, kind
assetsearch_index_job_files_done         gauge      job, collection
assetsearch_index_job_files_total        gauge      job, collection
=======================================  =========  ===================================
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select

from latent.catalog.jobs import RUNNING
from latent.catalog.schema import Collection, IndexJob

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from latent.catalog import Catalog
    from latent.models.encoders import EncoderCache
    from service.admission import Admission
    from service.indexes import IndexRegistry

log = logging.getLogger(__name__)

CALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class ServerCollector(Collector):
    """Reads the server's state at scrape time: admission, indexes, catalog, jobs."""

    def __init__(self, admission: Admission, indexes: IndexRegistry, catalog: Catalog) -> None:
        self.admission, self.indexes, self.catalog = admission, indexes, catalog

    def collect(self) -> Iterator[Metric]:
        """The gauges and counters of this moment (a catalog error leaves its part out)."""
        yield GaugeMetricFamily(
            "assetsearch_calls_in_flight",
            "Calls being worked on now (health checks not counted).",
            value=self.admission.in_flight,
        )
        yield GaugeMetricFamily(
            "assetsearch_max_in_flight",
            "Calls the server works on at once (ASSETSEARCH_MAX_IN_FLIGHT).",
            value=self.admission.limit,
        )
        yield CounterMetricFamily(
            "assetsearch_calls_refused",
            "Calls refused with RESOURCE_EXHAUSTED because the in-flight limit was reached.",
            value=self.admission.refused,
        )
        yield from self._collections()
        yield from self._jobs()

    def _collections(self) -> Iterator[Metric]:
        labels = ["collection"]
        size = GaugeMetricFamily(
            "assetsearch_index_size", "Vectors in the served index generation.", labels=labels
        )
        seq = GaugeMetricFamily(
            "assetsearch_index_seq",
            "Change-log seq the served index generation reflects.",
            labels=labels,
        )
        head = GaugeMetricFamily(
            "assetsearch_catalog_head_seq",
            "Newest change-log seq of the collection in the catalog.",
            labels=labels,
        )
        lag = GaugeMetricFamily(
            "assetsearch_index_lag",
            "Change-log entries the served index has not applied yet (head seq - index seq).",
            labels=labels,
        )
        for name, live in sorted(self.indexes.all().items()):
            generation = live.generation
            size.add_metric([name], len(generation.index))
            seq.add_metric([name], generation.seq)
            try:
                newest = self.catalog.head_seq(live.collection.id)
            except Exception:  # noqa: BLE001 - a scrape must answer while the catalog is down
                log.warning("metrics: cannot read the head seq of %s", name, exc_info=True)
                continue
            head.add_metric([name], newest)
            lag.add_metric([name], max(newest - generation.seq, 0))
        yield from (size, seq, head, lag)

    def _jobs(self) -> Iterator[Metric]:
        labels = ["job", "collection"]
        done = GaugeMetricFamily(
            "assetsearch_index_job_files_done",
            "Files a running index job has handled.",
            labels=labels,
        )
        total = GaugeMetricFamily(
            "assetsearch_index_job_files_total",
            "Files a running index job has found.",
            labels=labels,
        )
        stmt = (
            select(IndexJob.id, Collection.name, IndexJob.files_done, IndexJob.files_total)
            .join(Collection, Collection.id == IndexJob.collection_id)
            .where(IndexJob.state == RUNNING)
        )
        try:
            with self.catalog.engine.connect() as conn:
                rows = conn.execute(stmt).all()
        except Exception:  # noqa: BLE001 - no jobs table (an old catalog) or the catalog is down
            log.debug("metrics: cannot read index jobs", exc_info=True)
            rows = []
        for job_id, collection, files_done, files_total in rows:
            done.add_metric([str(job_id), collection], files_done or 0)
            total.add_metric([str(job_id), collection], files_total or 0)
        yield from (done, total)


class Metrics:
    """The metrics of one server on its own registry (two servers in a process never mix)."""

    def __init__(
        self,
        admission: Admission,
        indexes: IndexRegistry,
        catalog: Catalog,
        encoders: EncoderCache,
    ) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter(
            "assetsearch_calls",
            "Calls finished, by method and status code.",
            ["method", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "assetsearch_call_duration_seconds",
            "Time from a call's start to its end (a stream's last message), by method.",
            ["method"],
            buckets=CALL_BUCKETS,
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "assetsearch_encoder_batch_seconds",
            "Time of one encoder forward pass.",
            ["model", "kind"],
            buckets=BATCH_SECONDS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "assetsearch_encoder_batch_size",
            "Items (images or texts) in one encoder forward pass.",
            ["model", "kind"],
            buckets=BATCH_SIZES,
            registry=self.registry,
        )
        self.registry.register(ServerCollector(admission, indexes, catalog))
        encoders.batch_hooks.add(self.on_batch)
        self.port: int | None = None
        self._http: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def on_call(self, method: str, code: str, seconds: float) -> None:
        """Count one finished call and its duration."""
        self.calls.labels(method, code).inc()
        self.latency.labels(method).observe(seconds)

    def on_batch(self, spec: str, kind: str, items: int, seconds: float) -> None:
        """Record one encoder forward pass (an ``EncoderCache`` batch hook)."""
        self.batch_seconds.labels(spec, kind).observe(seconds)
        self.batch_size.labels(spec, kind).observe(items)

    def serve(self, host: str, port: int | None) -> int | None:
        """Serve ``/metrics`` over HTTP on ``host:port`` (0: a free port); None: not served.

        Returns:
            The bound port, or None when ``port`` is None.
        """
        if port is None:
            return None
        self._http, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.port = int(self._http.server_port)
        log.info("metrics on http://%s:%d/metrics", host, self.port)
        return self.port

    def close(self) -> None:
        """Stop serving ``/metrics``."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
