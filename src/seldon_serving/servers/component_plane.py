"""The data plane of one component microservice: what both the REST and the gRPC
edge call.  Every behaviour (calling the adapter, exporting custom metrics,
counting feedback) exists here once.
"""

from __future__ import annotations

from typing import Any

from seldon_serving.components.adapter import ComponentAdapter
from seldon_serving.protocol.message import Feedback, SeldonMessage
from seldon_serving.servers.metrics import Metrics


class ComponentPlane:
    def __init__(self, adapter: ComponentAdapter, metrics: Metrics, labels: dict[str, str]) -> None:
        self.adapter = adapter
        self.metrics = metrics
        self._labels = {
            name: dict(labels, method=name)
            for name in ("predict", "transform-input", "transform-output", "route", "aggregate", "feedback")
        }

    def _export(self, response: SeldonMessage, method: str) -> SeldonMessage:
        metrics = response.meta.get("metrics")
        if metrics:
            self.metrics.record_custom(metrics, self._labels[method])
        return response

    async def predict(self, msg: SeldonMessage) -> SeldonMessage:
        return self._export(await self.adapter.predict(msg), "predict")

    async def transform_input(self, msg: SeldonMessage) -> SeldonMessage:
        return self._export(await self.adapter.transform_input(msg), "transform-input")

    async def transform_output(self, msg: SeldonMessage) -> SeldonMessage:
        return self._export(await self.adapter.transform_output(msg), "transform-output")

    async def route(self, msg: SeldonMessage) -> SeldonMessage:
        return self._export(await self.adapter.route(msg), "route")

    async def aggregate(self, msgs: list[SeldonMessage]) -> SeldonMessage:
        return self._export(await self.adapter.aggregate(msgs), "aggregate")

    async def send_feedback(self, feedback: Feedback) -> SeldonMessage:
        response = await self.adapter.send_feedback(feedback)
        self.metrics.record_feedback(feedback.reward, self._labels["feedback"])
        return self._export(response, "feedback")

    async def health_status(self) -> SeldonMessage:
        return await self.adapter.health_status()

    def metadata(self) -> dict[str, Any]:
        return self.adapter.metadata()
