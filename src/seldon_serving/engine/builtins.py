"""The engine's own node implementations (graph `implementation` field): no container,
no component, just a few lines run by the engine itself."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from seldon_serving.protocol.errors import RoutingError
from seldon_serving.protocol.message import TENSOR, Feedback, SeldonMessage

SIMPLE_MODEL_METRICS = (
    {"key": "mymetric_counter", "type": "COUNTER", "value": 1.0},
    {"key": "mymetric_gauge", "type": "GAUGE", "value": 100.0},
    {"key": "mymetric_timer", "type": "TIMER", "value": 22.1},
)


class BuiltinRunner:
    def __init__(self, node: str, implementation: str) -> None:
        self.node = node
        self.implementation = implementation

    async def transform_input(self, msg: SeldonMessage) -> SeldonMessage:
        return msg

    async def transform_output(self, msg: SeldonMessage) -> SeldonMessage:
        return msg

    async def route(self, msg: SeldonMessage) -> int:
        return -1

    async def aggregate(self, msgs: list[SeldonMessage]) -> SeldonMessage:
        return msgs[0]

    async def send_feedback(self, feedback: Feedback) -> None:
        return None

    async def close(self) -> None:
        return None

    async def metadata(self) -> dict[str, Any]:
        return {"name": self.node, "versions": [], "platform": "seldon", "inputs": [], "outputs": []}

    def describe(self) -> str:
        return f"built-in {self.implementation}"


class SimpleModel(BuiltinRunner):
    async def transform_input(self, msg: SeldonMessage) -> SeldonMessage:
        return SeldonMessage(
            form=TENSOR,
            payload=np.array([[0.1, 0.9, 0.5]]),
            names=["class0", "class1", "class2"],
            meta={"metrics": [dict(m) for m in SIMPLE_MODEL_METRICS]},
            status={"code": 0, "info": "", "reason": "", "status": "SUCCESS"},
        )


class SimpleRouter(BuiltinRunner):
    async def route(self, msg: SeldonMessage) -> int:
        return 0


class RandomABTest(BuiltinRunner):
    def __init__(
        self, node: str, implementation: str, ratio_a: float, n_children: int, seed: int | None = None
    ) -> None:
        super().__init__(node, implementation)
        if n_children != 2:
            raise RoutingError(f"A/B test '{node}' needs exactly 2 children, has {n_children}", node=node)
        self.ratio_a = ratio_a
        self._random = random.Random(seed)

    async def route(self, msg: SeldonMessage) -> int:
        return 0 if self._random.random() <= self.ratio_a else 1


class AverageCombiner(BuiltinRunner):
    async def aggregate(self, msgs: list[SeldonMessage]) -> SeldonMessage:
        if not msgs:
            raise RoutingError(f"combiner '{self.node}' received no outputs", node=self.node)
        arrays = []
        for msg in msgs:
            if not msg.is_array:
                raise RoutingError(
                    f"combiner '{self.node}' received {msg.form}, not an array", node=self.node
                )
            array = np.asarray(msg.array(), dtype=float)
            if array.ndim != 2:
                raise RoutingError(
                    f"combiner '{self.node}' received data that is not 2 dimensional", node=self.node
                )
            if arrays and array.shape != arrays[0].shape:
                raise RoutingError(
                    f"combiner '{self.node}' expected shape {arrays[0].shape} but found {array.shape}",
                    node=self.node,
                )
            arrays.append(array)
        first = msgs[0]
        mean = np.mean(arrays, axis=0)
        return SeldonMessage(
            form=first.form,
            payload=mean,
            names=list(first.names),
            meta=first.copy_meta(),
            status=first.status,
            tf_dtype=first.tf_dtype,
        )


def builtin_runner(
    node: str, implementation: str, parameters: dict[str, Any], n_children: int
) -> BuiltinRunner:
    if implementation == "SIMPLE_MODEL":
        return SimpleModel(node, implementation)
    if implementation == "SIMPLE_ROUTER":
        return SimpleRouter(node, implementation)
    if implementation == "AVERAGE_COMBINER":
        return AverageCombiner(node, implementation)
    if implementation == "RANDOM_ABTEST":
        if "ratioA" not in parameters:
            raise RoutingError(f"A/B test '{node}': parameter 'ratioA' is missing", node=node)
        seed = parameters.get("seed")
        return RandomABTest(
            node, implementation, float(parameters["ratioA"]), n_children, None if seed is None else int(seed)
        )
    raise ValueError(f"node '{node}': implementation {implementation} is not built in")
