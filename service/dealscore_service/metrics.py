"""Prometheus metrics: requests and latency by route, scores served, the model in use.

Each app gets its own registry (tests build many apps in one process). With
several uvicorn workers ``dealscore serve`` sets ``PROMETHEUS_MULTIPROC_DIR``
and ``/metrics`` aggregates every worker's numbers, as prometheus-client's
multiprocess mode prescribes.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

disable_created_metrics()  # the *_created series only clutter dashboards

LATENCY_BUCKETS = (0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The service's metrics on a private registry."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.requests = Counter(
            "dealscore_http_requests", "HTTP requests by method, route template and status",
            ["method", "route", "status"], registry=reg,
        )
        self.latency = Histogram(
            "dealscore_http_request_duration_seconds", "HTTP request latency by method and route template",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=reg,
        )
        self.scores = Counter(
            "dealscore_scores_served", "Deals scored, by model version and whether freshly scored or replayed",
            ["model_version", "kind"], registry=reg,
        )
        self.model_info = Gauge(
            "dealscore_model_info", "The model in use (value 1) with its version and source",
            ["version", "source"], registry=reg, multiprocess_mode="liveall",
        )
        self.model_loaded = Gauge(
            "dealscore_model_loaded", "1 when a model is loaded", registry=reg, multiprocess_mode="liveall",
        )
        self._model_labels: tuple[str, str] | None = None
        self.store_errors = Counter(
            "dealscore_store_errors", "Score store operations that failed (answered 503)", registry=reg,
        )

    def set_model(self, version: str | None, source: str | None) -> None:
        """Record the model now in use; the previous one drops to 0.

        Set to 0 rather than only removed: in multiprocess mode a removed label
        set would live on in the worker's metrics file with its old value.
        """
        if self._model_labels is not None:
            self.model_info.labels(*self._model_labels).set(0)
            if not self.multiprocess:
                self.model_info.remove(*self._model_labels)
        self._model_labels = None
        if version is not None:
            self._model_labels = (version, source or "unknown")
            self.model_info.labels(*self._model_labels).set(1)
        self.model_loaded.set(1 if version is not None else 0)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        if self.multiprocess:
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
