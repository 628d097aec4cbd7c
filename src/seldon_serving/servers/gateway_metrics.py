"""The gateway's Prometheus metrics: the executor's request histogram, Seldon's feedback
counters per node and the custom metrics nodes return, over the shared `Metrics`."""

from __future__ import annotations

from typing import Any

from prometheus_client import Histogram

from seldon_serving.engine.graph import GraphNode
from seldon_serving.servers.metrics import Metrics, seldon_labels

REQUEST_LABELS = ("deployment_name", "predictor_name", "method", "code")
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    """Implements the data plane's observer; one per worker process."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.requests = Histogram(
            "seldon_api_executor_server_requests_seconds",
            "Time to answer a prediction or feedback, by deployment, predictor, method and HTTP code",
            REQUEST_LABELS,
            registry=metrics.registry,
            buckets=_BUCKETS,
        )
        # labels() costs a lock and a tuple build per call; the children are few, keep them.
        self._children: dict[tuple[str, str, str, int], Any] = {}
        self._node_labels: dict[tuple[str, str, str, str], dict[str, str]] = {}

    def request(self, deployment: str, predictor: str, method: str, code: int, seconds: float) -> None:
        key = (deployment, predictor, method, code)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(deployment, predictor, method, str(code))
        child.observe(seconds)

    def _labels(self, deployment: str, predictor: str, node: GraphNode, method: str) -> dict[str, str]:
        key = (deployment, predictor, node.name, method)
        labels = self._node_labels.get(key)
        if labels is None:
            labels = self._node_labels[key] = {
                **seldon_labels(deployment, predictor, node.name, node.image),
                "method": method,
            }
        return labels

    def custom_metrics(
        self, deployment: str, predictor: str, node: GraphNode, metrics: list[dict[str, Any]]
    ) -> None:
        self.metrics.record_custom(metrics, self._labels(deployment, predictor, node, "predict"))

    def feedback(self, deployment: str, predictor: str, node: GraphNode, reward: float) -> None:
        self.metrics.record_feedback(reward, self._labels(deployment, predictor, node, "feedback"))
