"""Prometheus metrics shared by every edge: Seldon's feedback counters and the custom
metrics components return in `meta.metrics`.

With several worker processes, prometheus-client's multiprocess mode aggregates
the workers' values (PROMETHEUS_MULTIPROC_DIR is set by the runner before any
worker imports prometheus_client), so one scrape sees the whole server.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

BASE_LABELS = ("deployment_name", "predictor_name", "model_name", "model_image", "method")

# Seldon's TIMER values are milliseconds; histograms are kept in seconds.
_TIMER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """One per process.  Custom metric objects are created on first use; a metric
    name keeps the tag keys it was first seen with (Prometheus needs a fixed label set)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._lock = threading.Lock()
        self._custom: dict[tuple[str, str], tuple[Any, tuple[str, ...]]] = {}
        self.feedback_total = Counter(
            "seldon_api_model_feedback",
            "Feedback calls received",
            BASE_LABELS,
            registry=self.registry,
        )
        self.feedback_reward = Counter(
            "seldon_api_model_feedback_reward",
            "Sum of the rewards received as feedback",
            BASE_LABELS,
            registry=self.registry,
        )

    def record_feedback(self, reward: float, labels: dict[str, str]) -> None:
        values = [labels.get(name, "") for name in BASE_LABELS]
        self.feedback_total.labels(*values).inc()
        self.feedback_reward.labels(*values).inc(reward)

    def record_custom(self, metrics: list[dict[str, Any]], labels: dict[str, str]) -> None:
        for metric in metrics:
            key = metric.get("key")
            if not isinstance(key, str) or not key:
                continue
            kind = str(metric.get("type", "COUNTER"))
            tags = metric.get("tags") or {}
            obj, tag_names = self._custom_metric(key, kind, tuple(sorted(tags)))
            values = [labels.get(name, "") for name in BASE_LABELS] + [
                str(tags.get(t, "")) for t in tag_names
            ]
            value = float(metric.get("value", 0.0))
            child = obj.labels(*values)
            if kind == "GAUGE":
                child.set(value)
            elif kind in ("TIMER", "HISTOGRAM"):
                child.observe(value / 1000.0 if kind == "TIMER" else value)
            elif value >= 0:
                child.inc(value)

    def _custom_metric(self, key: str, kind: str, tag_names: tuple[str, ...]) -> tuple[Any, tuple[str, ...]]:
        found = self._custom.get((key, kind))
        if found is not None:
            return found
        with self._lock:
            found = self._custom.get((key, kind))
            if found is not None:
                return found
            labelnames = BASE_LABELS + tag_names
            name = key.replace("-", "_").replace(".", "_")
            if kind == "GAUGE":
                obj: Any = Gauge(
                    name, key, labelnames, registry=self.registry, multiprocess_mode="mostrecent"
                )
            elif kind in ("TIMER", "HISTOGRAM"):
                suffix = "_seconds" if kind == "TIMER" and not name.endswith("_seconds") else ""
                buckets = _TIMER_BUCKETS if kind == "TIMER" else Histogram.DEFAULT_BUCKETS
                obj = Histogram(name + suffix, key, labelnames, registry=self.registry, buckets=buckets)
            else:
                obj = Counter(name, key, labelnames, registry=self.registry)
            self._custom[(key, kind)] = (obj, tag_names)
            return obj, tag_names

    def render(self) -> tuple[bytes, str]:
        """The scrape body: this process's registry, or all workers' when multiprocess."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
