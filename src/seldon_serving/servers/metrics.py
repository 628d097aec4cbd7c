"""Prometheus metrics shared by every edge: the custom metrics components return in
`meta.metrics` and Seldon's feedback counters, exported exactly as Seldon's Python wrapper
exports them, so existing dashboards and alerts keep working:

- the metric is named by its key (a TIMER is the histogram `<key>`, in seconds, over Seldon's
  50 buckets from 1 ms to 30 s);
- its labels are the metric's tags, `method` (predict, inputtransform, outputtransform, router,
  aggregate, feedback, health), Seldon's default labels (deployment, predictor, model and
  image names and versions, plus the pre-1.3 aliases) and `worker_id`;
- feedback counts `seldon_api_model_feedback` and sums `seldon_api_model_feedback_reward`
  the same way, with method `feedback`.

The A/B statistics of every router node and traffic split (`engine.experiments`) are the
`seldon_experiment_*` gauges (`ExperimentGauges`), computed at scrape time from the state store,
so they are the whole server's whichever worker answers the scrape.

Adaptive batching adds `seldon_batch_size` and `seldon_batch_wait_seconds` per batched node
(`components.batching.BATCH_METRICS`, registered here).

With several worker processes, prometheus-client's multiprocess mode gathers the workers'
values (PROMETHEUS_MULTIPROC_DIR is set by the runner before any worker creates a metric);
each worker's samples keep their own `worker_id`, as with Seldon.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from seldon_serving.components.batching import BATCH_METRICS
from seldon_serving.engine import experiments
from seldon_serving.state.base import StateStore

# Seldon's exposition has no `_created` series.
disable_created_metrics()  # type: ignore[no-untyped-call]

FEEDBACK_KEY = "seldon_api_model_feedback"
FEEDBACK_REWARD_KEY = "seldon_api_model_feedback_reward"
NOT_IMPLEMENTED = "NOT_IMPLEMENTED"  # Seldon's value for a label its environment does not give
# Seldon's TIMER buckets (seconds): np.logspace(-3, np.log10(30), 50), 1 ms to 30 s, as
# seldon-core computes them with its numpy 1.26.  Written out: another numpy differs in the
# last digit, and the `le` labels must be Seldon's.
SELDON_BUCKETS = (
    0.001,
    0.0012341553253454693,
    0.0015231393670785815,
    0.0018797905611233593,
    0.0023199535315445415,
    0.002863183005509725,
    0.0035336125536884733,
    0.004361026750842238,
    0.005382184388525997,
    0.006642451525090608,
    0.008197816923039709,
    0.010117379411776668,
    0.012486417679584786,
    0.015410178873747385,
    0.019018554321561593,
    0.02347185009632733,
    0.028967908792092944,
    0.03575089889988335,
    0.04412216226317852,
    0.05445360152285871,
    0.06720420230367624,
    0.0829404241586763,
    0.10236136616184238,
    0.12632982515827532,
    0.15591062646904755,
    0.19241792993472334,
    0.2374736129208902,
    0.2930793240153456,
    0.3617054084821892,
    0.44640065608455204,
    0.5509277469444613,
    0.6799304127720881,
    0.8391397397870157,
    1.035628778567157,
    1.2781267721496807,
    1.5774069623151439,
    1.9467652027782552,
    2.402610642206036,
    2.965194718810281,
    3.65951085290597,
    4.516404807273444,
    5.573945044312399,
    6.879113959621136,
    8.489895126924782,
    10.477849282518772,
    12.931293490187748,
    15.959224724520412,
    19.696162182151948,
    24.30812344597087,
    29.999999999999996,
)

# The request histograms' buckets: Seldon's executor's (DefBuckets, 5 ms to 10 s) with finer
# ones below 5 ms, where our nodes answer; every `le` a Seldon query names exists.
REQUEST_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)

_NOT_NAME = re.compile(r"[^a-zA-Z0-9_]")
log = logging.getLogger("seldon_serving.metrics")


def seldon_labels(
    deployment: str = "",
    predictor: str = "",
    model: str = "",
    image: str = "",
    predictor_version: str = "",
) -> dict[str, str]:
    """Seldon's default labels of a component's metrics (what its operator's environment says)."""
    image = image or f"{NOT_IMPLEMENTED}:{NOT_IMPLEMENTED}"
    *name_parts, version = image.split(":")
    model_image = ":".join(name_parts)
    labels = {
        "deployment_name": deployment or NOT_IMPLEMENTED,
        "model_name": model or NOT_IMPLEMENTED,
        "model_image": model_image,
        "model_version": version,
        "predictor_name": predictor or NOT_IMPLEMENTED,
        "predictor_version": predictor_version or NOT_IMPLEMENTED,
    }
    # the label names before Seldon Core 1.3, still exported
    labels["seldon_deployment_name"] = labels["deployment_name"]
    labels["image_name"] = labels["model_image"]
    labels["image_version"] = labels["model_version"]
    return labels


def _prometheus_name(key: str) -> str:
    """A valid Prometheus metric or label name for a Seldon metric key or tag ("my-metric.x" ->
    "my_metric_x"); a valid one is kept as it is."""
    name = _NOT_NAME.sub("_", key)
    return name if name[:1].isalpha() or (name[:1] == "_" and name[:2] != "__") else "m_" + name


class _Custom(Collector):
    """The custom metric objects of this process: a key may come with several sets of tags, so
    one name may have several objects, which no registry would take."""

    def __init__(self) -> None:
        self.objects: list[Any] = []

    def collect(self) -> Iterator[Metric]:
        for obj in list(self.objects):
            yield from obj.collect()


class Metrics:
    """One per process.  A metric object is created on first use for each (key, type, label
    names), since Prometheus needs a fixed label set per object."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._custom = _Custom()
        self.registry.register(self._custom)
        self.registry.register(BATCH_METRICS)
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str, tuple[str, ...]], Any] = {}
        self._types: dict[str, str] = {}  # exported name -> the type it was first seen with
        self._warned: set[tuple[str, str]] = set()
        self._views: list[Collector] = []  # computed at scrape time, in every mode
        self._declared: list[Any] = []  # metrics whose families show before their first sample

    def declare(self, metric: Any) -> Any:
        """Register `metric` (a prometheus-client metric made with `registry=None`) and have its
        family (HELP and TYPE) in every scrape, also before its first sample and with several
        workers (where only sampled metrics reach the shared files)."""
        self.registry.register(metric)
        self._declared.append(metric)
        return metric

    def add_view(self, collector: Collector) -> None:
        """Export `collector`'s metrics too (with several workers as well: it must give the
        whole server's values itself)."""
        self._views.append(collector)
        self.registry.register(collector)

    def record_feedback(self, reward: float, labels: Mapping[str, str]) -> None:
        """Seldon's feedback counters; `labels` are Seldon's default labels and `method`."""
        self.record_custom([{"key": FEEDBACK_KEY, "type": "COUNTER", "value": 1.0}], labels)
        # A Prometheus counter only grows: a negative reward (legitimate for a bandit) would
        # raise in inc(), and NaN or infinity would spoil the sum for good.  They are counted
        # in the feedback total but not added to the reward sum.
        if 0.0 <= reward < math.inf:
            self.record_custom([{"key": FEEDBACK_REWARD_KEY, "type": "COUNTER", "value": reward}], labels)

    def record_custom(self, metrics: Iterable[Mapping[str, Any]], labels: Mapping[str, str]) -> None:
        """Export a component's custom metrics; `labels` are Seldon's default labels and `method`.

        A metric Prometheus cannot take (a key already exported with another type) is skipped
        with one warning: exporting must never fail the request that carried it."""
        for metric in metrics:
            key = metric.get("key")
            if not isinstance(key, str) or not key:
                continue
            kind = str(metric.get("type", "COUNTER"))
            # As Seldon: the tags, then the method and the default labels over them.
            tags = {_prometheus_name(str(k)): str(v) for k, v in (metric.get("tags") or {}).items()}
            merged = {**tags, **labels, "worker_id": str(os.getpid())}
            obj = self._object(key, kind, tuple(merged))
            if obj is None:
                continue
            value = float(metric.get("value", 0.0))
            child = obj.labels(*merged.values())
            if kind == "GAUGE":
                child.set(value)
            elif kind in ("TIMER", "HISTOGRAM"):
                if not math.isnan(value):  # NaN falls in no bucket but would spoil the sum
                    child.observe(value / 1000.0 if kind == "TIMER" else value)  # TIMERs are in ms
            elif 0.0 <= value < math.inf:  # counters only grow, and by finite amounts
                child.inc(value)

    def _object(self, key: str, kind: str, labelnames: tuple[str, ...]) -> Any:
        found = self._objects.get((key, kind, labelnames))
        if found is not None:
            return found
        name = _prometheus_name(key)
        with self._lock:
            found = self._objects.get((key, kind, labelnames))
            if found is not None:
                return found
            if self._types.setdefault(name, kind) != kind:
                if (key, kind) not in self._warned:
                    self._warned.add((key, kind))
                    first = self._types[name]
                    log.warning("custom metric %r (%s) is not exported: it is already a %s", key, kind, first)
                return None
            if kind == "GAUGE":
                obj: Any = Gauge(name, key, labelnames, registry=None, multiprocess_mode="mostrecent")
            elif kind in ("TIMER", "HISTOGRAM"):
                buckets = SELDON_BUCKETS if kind == "TIMER" else Histogram.DEFAULT_BUCKETS
                obj = Histogram(name, key, labelnames, registry=None, buckets=buckets)
            else:
                obj = Counter(name, key, labelnames, registry=None)
            self._objects[(key, kind, labelnames)] = obj
            self._custom.objects.append(obj)
            return obj

    def render(self) -> tuple[bytes, str]:
        """The scrape body: this process's registry, or all workers' when multiprocess."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            registry.register(_Sampled(multiprocess.MultiProcessCollector(None), self._declared))  # type: ignore[no-untyped-call]
            for view in self._views:
                registry.register(view)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _Sampled(Collector):
    """The workers' samples, then an empty family for each declared metric none has sampled yet."""

    def __init__(self, sampled: Collector, declared: list[Any]) -> None:
        self.sampled = sampled
        self.declared = declared

    def collect(self) -> Iterator[Metric]:
        seen = set()
        for family in self.sampled.collect():
            seen.add(family.name)
            yield family
        for metric in self.declared:
            for family in metric.describe():
                if family.name not in seen:
                    yield Metric(family.name, family.documentation, family.type)


EXPERIMENT_LABELS = ["namespace", "deployment", "predictor", "node", "branch"]
_BRANCH_GAUGES = {
    "requests": ("requests", "Requests the branch served (errors included)"),
    "errors": ("errors", "Requests of the branch that failed"),
    "feedback": ("feedback", "Feedback (rewards) received for the branch"),
    "latency_p50_seconds": ("latency_p50_ms", "Median latency of the branch's requests"),
    "latency_p99_seconds": ("latency_p99_ms", "99th percentile latency of the branch's requests"),
    "reward_mean": ("reward_mean", "Mean reward of the branch"),
}
_COMPARISON_GAUGES = {
    "effect": ("effect", "The leader's mean reward minus this branch's"),
    "p_value": ("p_value", "Two-sided p-value of the test of this branch against the leader"),
    "remaining_feedback": ("remaining_feedback", "Feedback still needed for the configured power"),
}


class ExperimentGauges(Collector):
    """`seldon_experiment_*`: the A/B statistics `seldon get` shows (status.experiments), per
    branch, labelled namespace, deployment, predictor, node and branch (a traffic split's
    predictor and node are empty, its branches are predictors)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        def family(name: str, text: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"seldon_experiment_{name}", text, labels=EXPERIMENT_LABELS)

        branch = {name: family(name, text) for name, (_, text) in _BRANCH_GAUGES.items()}
        ci_low = family("reward_ci_low", "Lower end of the 95% confidence interval of the mean reward")
        ci_high = family("reward_ci_high", "Upper end of the 95% confidence interval of the mean reward")
        leader = family("leader", "1 for the branch with the highest mean reward, else 0")
        winner = family("winner", "1 for the leader once it beats every other branch at alpha, else 0")
        compared = {name: family(name, text) for name, (_, text) in _COMPARISON_GAUGES.items()}
        try:
            stored = self.store.items(experiments.NAMESPACE)
        except Exception as exc:  # a scrape must not fail for want of these
            log.warning("reading A/B statistics for Prometheus failed: %s", exc)
            stored = {}
        for key, value in sorted(stored.items()):
            namespace, _, deployment = key.partition("/")
            for entry in experiments.summarize(value):
                where = [namespace, deployment, entry["predictor"] or "", entry["node"] or ""]
                for b in entry["branches"]:
                    labels = [*where, b["branch"]]
                    for name, (field, _) in _BRANCH_GAUGES.items():
                        found = b[field]
                        if found is not None:  # latencies are shown in ms, exported in seconds
                            scale = 1000.0 if field.endswith("_ms") else 1.0
                            branch[name].add_metric(labels, found / scale)
                    if b["reward_ci95"] is not None:
                        ci_low.add_metric(labels, b["reward_ci95"][0])
                        ci_high.add_metric(labels, b["reward_ci95"][1])
                    leader.add_metric(labels, 1.0 if b["branch"] == entry["leader"] else 0.0)
                    winner.add_metric(labels, 1.0 if b["branch"] == entry["winner"] else 0.0)
                for c in entry["comparisons"]:
                    labels = [*where, c["branch"]]
                    for name, (field, _) in _COMPARISON_GAUGES.items():
                        if c[field] is not None:
                            compared[name].add_metric(labels, c[field])
        yield from branch.values()
        yield from (ci_low, ci_high, leader, winner)
        yield from compared.values()
