"""Prometheus metrics shared by every edge: Seldon's feedback counters and the custom
metrics components return in `meta.metrics`.

With several worker processes, prometheus-client's multiprocess mode aggregates
the workers' values (PROMETHEUS_MULTIPROC_DIR is set by the runner before any
worker imports prometheus_client), so one scrape sees the whole server.
"""

from __future__ import annotations

import logging
import math
import os
import re
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

_MISSING = object()
_NOT_NAME = re.compile(r"[^a-zA-Z0-9_]")
log = logging.getLogger("seldon_serving.metrics")


def _prometheus_name(key: str) -> str:
    """A valid Prometheus metric or label name for a Seldon metric key or tag ("my-metric.x" ->
    "my_metric_x")."""
    name = _NOT_NAME.sub("_", key)
    return name if name[:1].isalpha() or (name[:1] == "_" and name[:2] != "__") else "m_" + name


# Seldon's TIMER values are milliseconds; histograms are kept in seconds.
_TIMER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """One per process.  Custom metric objects are created on first use; a metric
    name keeps the tag keys it was first seen with (Prometheus needs a fixed label set)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._lock = threading.Lock()
        self._custom: dict[tuple[str, str], tuple[Any, tuple[str, ...]] | None] = {}
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
        # A Prometheus counter only grows: a negative reward (legitimate for a bandit) would
        # raise in inc(), and NaN or infinity would spoil the sum for good.  They are counted
        # in feedback_total but not added to the reward sum.
        if 0.0 <= reward < math.inf:
            self.feedback_reward.labels(*values).inc(reward)

    def record_custom(self, metrics: list[dict[str, Any]], labels: dict[str, str]) -> None:
        """Export a component's custom metrics.  A metric Prometheus cannot take (a key that
        names another metric of a different type, a tag that clashes with our labels) is
        skipped with one warning: exporting must never fail the request that carried it."""
        for metric in metrics:
            key = metric.get("key")
            if not isinstance(key, str) or not key:
                continue
            kind = str(metric.get("type", "COUNTER"))
            tags = metric.get("tags") or {}
            found = self._custom_metric(key, kind, tuple(sorted(tags)))
            if found is None:
                continue
            obj, tag_names = found
            values = [labels.get(name, "") for name in BASE_LABELS] + [
                str(tags.get(t, "")) for t in tag_names
            ]
            value = float(metric.get("value", 0.0))
            child = obj.labels(*values)
            if kind == "GAUGE":
                child.set(value)
            elif kind in ("TIMER", "HISTOGRAM"):
                if not math.isnan(value):  # NaN falls in no bucket but would spoil the sum
                    child.observe(value / 1000.0 if kind == "TIMER" else value)
            elif 0.0 <= value < math.inf:  # counters only grow, and by finite amounts
                child.inc(value)

    def _custom_metric(
        self, key: str, kind: str, tag_names: tuple[str, ...]
    ) -> tuple[Any, tuple[str, ...]] | None:
        found = self._custom.get((key, kind), _MISSING)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        with self._lock:
            found = self._custom.get((key, kind), _MISSING)
            if found is not _MISSING:
                return found  # type: ignore[return-value]
            # label names made valid; values are still looked up by the tags' own keys
            labelnames = BASE_LABELS + tuple(_prometheus_name(t) for t in tag_names)
            name = _prometheus_name(key)
            try:
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
            except ValueError as exc:  # a name taken by another metric, or a reserved label
                log.warning("custom metric %r (%s) is not exported: %s", key, kind, exc)
                self._custom[(key, kind)] = None
                return None
            self._custom[(key, kind)] = (obj, tag_names)
            return obj, tag_names

    def render(self) -> tuple[bytes, str]:
        """The scrape body: this process's registry, or all workers' when multiprocess."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
