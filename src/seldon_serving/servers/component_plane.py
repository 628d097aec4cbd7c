"""The data plane of one component microservice: what both the REST and the gRPC
edge call.  Every behaviour (calling the adapter, exporting custom metrics,
counting feedback) exists here once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from prometheus_client import Histogram

from seldon_serving.components.adapter import ComponentAdapter, MetricsSink
from seldon_serving.components.batching import Batcher
from seldon_serving.protocol.errors import SeldonError
from seldon_serving.protocol.message import Feedback, SeldonMessage
from seldon_serving.servers.metrics import REQUEST_BUCKETS, Metrics

T = TypeVar("T")
REQUESTS = "seldon_api_microservice_requests_seconds"
_TAGS = {  # plane method -> Seldon's method tag (the `method` label of its custom metrics too)
    "predict": "predict",
    "transform_input": "inputtransform",
    "transform_output": "outputtransform",
    "route": "router",
    "aggregate": "aggregate",
    "send_feedback": "feedback",
}


def metrics_sink(metrics: Metrics, labels: dict[str, str]) -> MetricsSink:
    """The adapter's `on_metrics`: export the custom metrics the component itself produced,
    labelled with Seldon's method tag.  Not the whole answer's `meta.metrics`: an aggregate's
    answer also carries its inputs' metrics, which their own components export and which a
    client can fill with anything."""
    by_tag: dict[str, dict[str, str]] = {}

    def sink(batch: list[dict[str, Any]], tag: str) -> None:
        tagged = by_tag.get(tag)
        if tagged is None:
            tagged = by_tag[tag] = dict(labels, method=tag)
        metrics.record_custom(batch, tagged)

    return sink


class ComponentPlane:
    """`adapter` should export its metrics through `metrics_sink(metrics, labels)`; `batcher`,
    if given, batches the adapter's predict (see `components.batching`)."""

    def __init__(
        self,
        adapter: ComponentAdapter,
        metrics: Metrics,
        labels: dict[str, str],
        batcher: Batcher | None = None,
        model_name: str | None = None,
    ) -> None:
        self.adapter = adapter
        # The V2 model name: --model-name, else the class's name.
        self.model_name = model_name or type(adapter.user_object).__name__
        # A graph node also answers V2 under its node name (PREDICTIVE_UNIT_ID): the name the
        # gateway, which knows nodes but not their classes, calls it by.
        self.model_names = frozenset(n for n in (self.model_name, adapter.unit_id) if n)
        self.metrics = metrics
        self._feedback_labels = dict(labels, method="feedback")
        self.batcher = batcher
        self._predict = batcher.predict if batcher is not None else adapter.predict
        # Every request the component answers, per Seldon method tag and HTTP code, in the scrape
        # from the start (its families before the first request).
        self.requests = metrics.declare(
            Histogram(
                REQUESTS,
                "Time the component took to answer, by Seldon method tag and HTTP status code",
                (*labels, "method", "code"),
                registry=None,
                buckets=REQUEST_BUCKETS,
            )
        )
        self._label_values = tuple(labels.values())
        # labels() costs a lock and a tuple build per call; the children are few, keep them.
        self._children: dict[tuple[str, int], Any] = {}

    def _observe(self, tag: str, code: int, started: float) -> None:
        child = self._children.get((tag, code))
        if child is None:
            child = self._children[(tag, code)] = self.requests.labels(*self._label_values, tag, str(code))
        child.observe(time.perf_counter() - started)

    async def _timed(self, tag: str, work: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            result = await work
        except SeldonError as error:
            self._observe(tag, error.http_status, started)
            raise
        except BaseException:
            self._observe(tag, 500, started)
            raise
        self._observe(tag, 200, started)
        return result

    # `raw=False`: a gRPC request that `grpc_raw` already offered to the class's raw hooks.

    async def predict(self, msg: SeldonMessage, *, raw: bool = True) -> SeldonMessage:
        return await self._timed("predict", self._predict(msg, raw=raw))

    async def transform_input(self, msg: SeldonMessage, *, raw: bool = True) -> SeldonMessage:
        return await self._timed("inputtransform", self.adapter.transform_input(msg, raw=raw))

    async def transform_output(self, msg: SeldonMessage, *, raw: bool = True) -> SeldonMessage:
        return await self._timed("outputtransform", self.adapter.transform_output(msg, raw=raw))

    async def route(self, msg: SeldonMessage, *, raw: bool = True) -> SeldonMessage:
        return await self._timed("router", self.adapter.route(msg, raw=raw))

    async def aggregate(self, msgs: list[SeldonMessage], *, raw: bool = True) -> SeldonMessage:
        return await self._timed("aggregate", self.adapter.aggregate(msgs, raw=raw))

    async def send_feedback(self, feedback: Feedback, *, raw: bool = True) -> SeldonMessage:
        response = await self._timed("feedback", self.adapter.send_feedback(feedback, raw=raw))
        self.metrics.record_feedback(feedback.reward, self._feedback_labels)
        return response

    async def v2_infer(self, msg: SeldonMessage) -> SeldonMessage:
        """A V2 inference: the component's input step (predict for a model, transform-input for
        a transformer, transform-output for an output transformer)."""
        service_type = self.adapter.service_type
        if service_type == "TRANSFORMER":
            return await self.transform_input(msg)
        if service_type == "OUTPUT_TRANSFORMER":
            return await self.transform_output(msg)
        return await self.predict(msg)

    async def grpc_raw(self, name: str, request: Any) -> SeldonMessage | None:
        """The answer of the class's protobuf-level hook for a gRPC request, if it has one."""
        started = time.perf_counter()
        try:
            answer = await self.adapter.grpc_raw(name, request)
        except SeldonError as error:
            self._observe(_TAGS[name], error.http_status, started)
            raise
        except BaseException:
            self._observe(_TAGS[name], 500, started)
            raise
        if answer is not None:  # else the method answers, and is timed there
            self._observe(_TAGS[name], 200, started)
        return answer

    async def health_status(self) -> SeldonMessage:
        return await self.adapter.health_status()

    def metadata(self) -> dict[str, Any]:
        return self.adapter.metadata()
