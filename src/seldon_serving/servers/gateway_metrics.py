"""The gateway's Prometheus metrics, named and labelled as Seldon 1.x's executor exports them
(executor/api/metric), so Seldon's Grafana dashboards and alerts keep working:

- `seldon_api_executor_server_requests_seconds`: every prediction and feedback the gateway
  answers, labelled deployment_name, predictor_name, predictor_version (the predictor's
  `version` annotation), service (`predictions` or `feedback`, Seldon's REST service names),
  method (`post`) and code (the HTTP status); a call on the gRPC port as the executor's gRPC
  server labelled it: service the full gRPC method (`/seldon.protos.Seldon/Predict`...),
  method `unary`, code the gRPC status name (`OK`, `InvalidArgument`...);
- `seldon_api_executor_client_requests_seconds`: every step of every graph node (timed by a
  node hook), labelled as the executor's client histogram: the same deployment labels, service
  (the node's REST path: `/predict`, `/transform-input`, `/route`, `/aggregate`,
  `/transform-output`, `/send-feedback`, or for a gRPC node the full gRPC method,
  `/seldon.protos.Model/Predict`...), model_name (the node), model_image and model_version
  (its image split at the tag), method (`post`; `unary` for a gRPC node) and code (the HTTP
  status; the gRPC status name, `OK`, `Unavailable`..., for a gRPC node);

plus Seldon's feedback counters per node and the custom metrics nodes return, over the
shared `Metrics`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import Any

from prometheus_client import Histogram

from seldon_serving.engine.deployment import Deployment, Predictor
from seldon_serving.engine.graph import GraphNode, NodeHook
from seldon_serving.engine.remote import GrpcRunner
from seldon_serving.protocol.errors import SeldonError, grpc_code_for
from seldon_serving.servers.metrics import REQUEST_BUCKETS, Metrics, seldon_labels
from seldon_serving.spec.models import PredictiveUnit

SERVER_REQUESTS = "seldon_api_executor_server_requests_seconds"
CLIENT_REQUESTS = "seldon_api_executor_client_requests_seconds"
# Seldon's executor's label names, in its order.
SERVER_LABELS = ("deployment_name", "predictor_name", "predictor_version", "service", "method", "code")
CLIENT_LABELS = (
    "deployment_name",
    "predictor_name",
    "predictor_version",
    "service",
    "model_name",
    "model_image",
    "model_version",
    "method",
    "code",
)
_REST_SERVICE = {  # step -> the path Seldon's executor posts to
    "predict": "/predict",
    "route": "/route",
    "aggregate": "/aggregate",
    "transform-output": "/transform-output",
    "send-feedback": "/send-feedback",
}
_GRPC_SERVICE = {
    "predict": "Model/Predict",
    "route": "Router/Route",
    "aggregate": "Combiner/Aggregate",
    "transform-output": "OutputTransformer/TransformOutput",
    "send-feedback": "Model/SendFeedback",
}


def predictor_version(deployment: Deployment, predictor: str) -> str:
    """The predictor's `version` annotation, as Seldon's executor labels it ("" without one)."""
    for spec in deployment.manifest.spec.predictors:
        if spec.name == predictor:
            return (spec.annotations or {}).get("version", "")
    return ""


def predictor_label_version(deployment: Deployment, predictor: str) -> str:
    """The predictor's `version` label: what Seldon's wrapper labels a node's own metrics with
    (its operator passes the predictor's labels, not its annotations; "" without one)."""
    for spec in deployment.manifest.spec.predictors:
        if spec.name == predictor:
            return (spec.labels or {}).get("version", "")
    return ""


def split_image(image: str) -> tuple[str, str]:
    """(model_image, model_version) of a node: its image split at the tag, as Seldon's executor
    does; a node without an image (a class, an implementation) keeps that name, version ""."""
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:  # no tag ("MyModel"), or a registry port ("host:5000/img")
        return image, ""
    return name, tag


def _unit_type(unit: PredictiveUnit, name: str) -> str | None:
    if unit.name == name:
        return str(unit.type) if unit.type is not None else None
    for child in unit.children:
        found = _unit_type(child, name)
        if found is not None:
            return found
    return None


GRPC_METHOD: ContextVar[str | None] = ContextVar("seldon_grpc_method", default=None)
"""The full gRPC method of the call being answered (set by the gateway's gRPC edge; None on REST)."""


def _grpc_code(name: str) -> str:
    """Go's gRPC code name, as the executor's label has it: INVALID_ARGUMENT -> InvalidArgument."""
    return "".join(part.capitalize() for part in name.split("_")) if name != "OK" else "OK"


class GatewayMetrics:
    """Implements the data plane's observer and gives every node its timing hook
    (`node_hook`, a `DataPlane.hook_factories` entry); one per worker process."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.requests = metrics.declare(
            Histogram(
                SERVER_REQUESTS,
                "A histogram of latencies for executor server",
                SERVER_LABELS,
                registry=None,
                buckets=REQUEST_BUCKETS,
            )
        )
        self.client_requests = metrics.declare(
            Histogram(
                CLIENT_REQUESTS,
                "A histogram of latencies for client calls from executor",
                CLIENT_LABELS,
                registry=None,
                buckets=REQUEST_BUCKETS,
            )
        )
        # labels() costs a lock and a tuple build per call; the children are few, keep them.
        self._children: dict[tuple[str, str, str, int], Any] = {}
        self._versions: dict[tuple[str, str], str] = {}  # (deployment, predictor) -> version
        self._node_labels: dict[tuple[str, str, str, str], dict[str, str]] = {}
        self._label_versions: dict[tuple[str, str], str] = {}  # the predictors' `version` labels

    def request(self, deployment: str, predictor: str, method: str, code: int, seconds: float) -> None:
        grpc_method = GRPC_METHOD.get()
        key = (deployment, predictor, grpc_method or method, code)
        child = self._children.get(key)
        if child is None:
            version = self._versions.get((deployment, predictor), "")
            if grpc_method is None:
                # The plane says predictions or feedback: Seldon's service; its method is the HTTP one.
                child = self.requests.labels(deployment, predictor, version, method, "post", str(code))
            else:
                status = "OK" if code < 400 else _grpc_code(grpc_code_for(code))
                child = self.requests.labels(deployment, predictor, version, grpc_method, "unary", status)
            self._children[key] = child
        child.observe(seconds)

    def node_hook(self, deployment: Deployment, predictor: Predictor, node: GraphNode) -> NodeHook:
        """Times every step of `node` into the client histogram (registered in
        `DataPlane.hook_factories`); per call, a clock read twice and a cached child's observe."""
        version = predictor_version(deployment, predictor.name)
        if self._versions.get((deployment.name, predictor.name), version) != version:
            # re-applied with another version annotation: its requests get the new label
            stale = [key for key in self._children if key[:2] == (deployment.name, predictor.name)]
            for key in stale:
                del self._children[key]
        self._versions[(deployment.name, predictor.name)] = version
        label_version = predictor_label_version(deployment, predictor.name)
        # (re)installed: its image or version may have changed since its labels were cached
        for cached in [k for k in self._node_labels if k[:3] == (deployment.name, predictor.name, node.name)]:
            del self._node_labels[cached]
        self._label_versions[(deployment.name, predictor.name)] = label_version
        image, image_version = split_image(node.image)
        grpc = isinstance(node.runner, GrpcRunner)
        transformer = False
        for spec in deployment.manifest.spec.predictors:
            if spec.name == predictor.name:
                transformer = _unit_type(spec.graph, node.name) == "TRANSFORMER"
        histogram = self.client_requests
        children: dict[tuple[str, int | str], Any] = {}

        def child(step: str, code: int | str) -> Any:
            found = children.get((step, code))
            if found is None:
                if grpc:
                    path = _GRPC_SERVICE.get(step, step)
                    if step == "predict" and transformer:
                        path = "Transformer/TransformInput"
                    elif step == "send-feedback" and node.does_route:
                        path = "Router/SendFeedback"
                    service, method = f"/seldon.protos.{path}", "unary"
                else:
                    service = _REST_SERVICE.get(step, "/" + step)
                    if step == "predict" and transformer:
                        service = "/transform-input"
                    method = "post"
                labels = (deployment.name, predictor.name, version, service, node.name, image, image_version)
                found = children[(step, code)] = histogram.labels(*labels, method, str(code))
            return found

        async def timed(node: GraphNode, step: str, given: Any, work: Awaitable[Any]) -> Any:
            started = time.perf_counter()
            try:
                result = await work
            except SeldonError as error:
                code = _grpc_code(error.grpc_code) if grpc else error.http_status
                child(step, code).observe(time.perf_counter() - started)
                raise
            except asyncio.CancelledError:  # its timeout (or the caller gone) cut the step off
                child(step, "DeadlineExceeded" if grpc else 504).observe(time.perf_counter() - started)
                raise
            except Exception:
                child(step, "Unknown" if grpc else 500).observe(time.perf_counter() - started)
                raise
            child(step, "OK" if grpc else 200).observe(time.perf_counter() - started)
            return result

        return timed

    def _labels(self, deployment: str, predictor: str, node: GraphNode, method: str) -> dict[str, str]:
        key = (deployment, predictor, node.name, method)
        labels = self._node_labels.get(key)
        if labels is None:
            labels = self._node_labels[key] = {
                **seldon_labels(
                    deployment,
                    predictor,
                    node.name,
                    node.image,
                    self._label_versions.get((deployment, predictor), ""),
                ),
                "method": method,
            }
        return labels

    def custom_metrics(
        self, deployment: str, predictor: str, node: GraphNode, metrics: list[dict[str, Any]]
    ) -> None:
        self.metrics.record_custom(metrics, self._labels(deployment, predictor, node, "predict"))

    def feedback(self, deployment: str, predictor: str, node: GraphNode, reward: float) -> None:
        self.metrics.record_feedback(reward, self._labels(deployment, predictor, node, "feedback"))
