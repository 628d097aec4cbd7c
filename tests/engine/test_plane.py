"""The data plane both gateway edges call: finding deployments, swapping them, metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from seldon_serving.engine.graph import GraphNode
from seldon_serving.engine.plane import DataPlane
from seldon_serving.protocol.errors import DeploymentNotFound
from seldon_serving.protocol.message import NDARRAY, Feedback, SeldonMessage
from tests.engine.build import build, manifest, node

X = SeldonMessage(form=NDARRAY, payload=[[1.0, 2.0]])


def model(name: str, cls: str = "RowSum", **params: Any) -> dict[str, Any]:
    return manifest(name, node("m", "MODEL", params=params or None), {"m": cls})


class Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, int]] = []
        self.metrics: list[tuple[str, str, str, list[str]]] = []
        self.feedbacks: list[tuple[str, str, float]] = []

    def request(self, deployment: str, predictor: str, method: str, code: int, seconds: float) -> None:
        assert seconds >= 0
        self.requests.append((deployment, predictor, method, code))

    def custom_metrics(self, deployment: str, predictor: str, node: GraphNode, metrics: list[dict]) -> None:
        self.metrics.append((deployment, predictor, node.name, [m["key"] for m in metrics]))

    def feedback(self, deployment: str, predictor: str, node: GraphNode, reward: float) -> None:
        self.feedbacks.append((deployment, node.name, reward))


async def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Let the event loop run until `condition` holds (at most `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)


def test_unknown_deployment_is_a_404_naming_it() -> None:
    plane = DataPlane()
    plane.install(build(model("iris")))
    with pytest.raises(DeploymentNotFound) as caught:
        asyncio.run(plane.predict("nope", None, X))
    error = caught.value
    assert error.http_status == 404 and error.grpc_code == "NOT_FOUND"
    assert "'nope'" in error.info and "iris" in error.info
    with pytest.raises(DeploymentNotFound, match="namespace 'prod'"):
        asyncio.run(plane.predict("iris", "prod", X))


def test_lookup_by_name_namespace_or_alone() -> None:
    plane = DataPlane()
    plane.install(build(model("iris", offset=1.0), namespace="default"))
    plane.install(build(model("iris", offset=2.0), namespace="prod"))

    def answer(name: str | None, namespace: str | None) -> float:
        return float(np.asarray(asyncio.run(plane.predict(name, namespace, X)).array())[0][0])

    assert answer("iris", "prod") == 5.0
    assert answer("iris", None) == 4.0  # the default namespace wins a tie
    with pytest.raises(DeploymentNotFound, match="2 deployments"):
        answer(None, None)
    plane.remove("default", "iris")
    assert answer(None, None) == 5.0  # only one left: no name needed


def test_swap_keeps_in_flight_requests_and_closes_the_old_one_after() -> None:
    plane = DataPlane()

    async def scenario() -> tuple[Any, Any, list[str]]:
        old = build(model("iris", "Sleepy", seconds=0.3))
        events: list[str] = []
        runner = old.predictors[0].root.runner

        async def close() -> None:
            events.append(f"closed with {old.inflight} in flight")

        runner.close = close  # type: ignore[method-assign]
        plane.install(old)
        slow = asyncio.create_task(plane.predict("iris", None, X))
        await until(lambda: old.inflight == 1)
        plane.install(build(model("iris", offset=10.0)))  # re-apply while a request is in flight
        fast = await plane.predict("iris", None, X)
        assert events == []
        first = await slow
        await until(lambda: events)  # the old one is closed once idle (checked every 50 ms)
        return first, fast, events

    first, fast, events = asyncio.run(scenario())
    assert first.array().tolist() == [[1.0, 2.0]]  # the old graph finished its request
    assert fast.array().tolist() == [[13.0]]  # new requests see the new graph
    assert events == ["closed with 0 in flight"]


def test_failed_deployment_says_why_and_makes_the_gateway_unready() -> None:
    plane = DataPlane()
    plane.install(build(model("iris")))
    plane.mark_failed("default", "broken", "node 'm': no module named 'Missing'")
    with pytest.raises(DeploymentNotFound, match="not running: node 'm': no module named 'Missing'"):
        asyncio.run(plane.predict("broken", None, X))
    assert "broken" in (asyncio.run(plane.not_ready()) or "")
    plane.remove("default", "broken")
    assert asyncio.run(plane.not_ready()) is None
    plane.paused = True
    assert asyncio.run(plane.not_ready()) == "paused"


def test_observer_sees_requests_custom_metrics_and_feedback() -> None:
    recorder = Recorder()
    plane = DataPlane(observer=recorder)
    plane.install(build(model("iris", tag="iris")))
    answer = asyncio.run(plane.predict("iris", None, X))
    asyncio.run(plane.send_feedback("iris", None, Feedback(request=X, response=answer, reward=1.0)))
    with pytest.raises(DeploymentNotFound):
        asyncio.run(plane.predict("other", None, X))
    assert recorder.requests == [("iris", "main", "predictions", 200), ("iris", "main", "feedback", 200)]
    assert recorder.metrics == [("iris", "main", "m", ["iris_calls"])]
    assert recorder.feedbacks == [("iris", "m", 1.0)]


def test_graph_and_model_metadata() -> None:
    plane = DataPlane()
    plane.install(
        build(
            manifest(
                "ab",
                node("r", implementation="SIMPLE_ROUTER", children=[node("m", "MODEL")]),
                {"m": "RowSum"},
            )
        )
    )
    graph = asyncio.run(plane.graph_metadata("ab", None))
    assert graph["name"] == "main" and set(graph["models"]) == {"r", "m"}
    assert asyncio.run(plane.model_metadata("ab", None, "m"))["name"] == "example/rowsum"
    with pytest.raises(DeploymentNotFound, match="no model 'zz'"):
        asyncio.run(plane.model_metadata("ab", None, "zz"))
