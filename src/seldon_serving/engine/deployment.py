"""A running deployment: its predictors' graphs, the traffic split between them, and
shadows that get a copy of the traffic whose answers are discarded."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seldon_serving.engine import graph
from seldon_serving.engine.compile import CompileContext, compile_graph
from seldon_serving.engine.graph import GraphNode
from seldon_serving.protocol.message import Feedback, SeldonMessage
from seldon_serving.spec.models import SeldonDeployment
from seldon_serving.spec.validation import deployment_name
from seldon_serving.state.base import StateStore

log = logging.getLogger("seldon_serving.engine")


@dataclass(slots=True, eq=False)
class Predictor:
    name: str
    root: GraphNode
    traffic: float
    shadow: bool
    node_names: frozenset[str]


@dataclass(slots=True, eq=False)
class Deployment:
    name: str
    namespace: str
    manifest: SeldonDeployment
    predictors: list[Predictor]
    _weights: list[float] = field(default_factory=list)
    _serving: list[Predictor] = field(default_factory=list)
    _shadows: list[Predictor] = field(default_factory=list)
    _background: set[asyncio.Task[Any]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._serving = [p for p in self.predictors if not p.shadow]
        self._shadows = [p for p in self.predictors if p.shadow]
        self._weights = [p.traffic for p in self._serving]

    def _pick(self) -> Predictor:
        if len(self._serving) == 1:
            return self._serving[0]
        return random.choices(self._serving, weights=self._weights)[0]

    async def predict(self, request: SeldonMessage) -> SeldonMessage:
        for shadow in self._shadows:
            self._spawn(graph.predict(shadow.root, request))
        return await graph.predict(self._pick().root, request)

    def _predictor_for_feedback(self, feedback: Feedback) -> Predictor:
        """The predictor that answered: the one whose nodes the response's routing/requestPath name."""
        if len(self._serving) > 1 and feedback.response is not None:
            seen = set(feedback.routing()) | set(feedback.response.meta.get("requestPath") or {})
            if seen:
                best = max(self._serving, key=lambda p: len(p.node_names & seen))
                if best.node_names & seen:
                    return best
        return self._pick()

    async def send_feedback(self, feedback: Feedback) -> None:
        await graph.send_feedback(self._predictor_for_feedback(feedback).root, feedback)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._shadow_done)

    def _shadow_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("shadow predictor of %s failed: %s", self.name, task.exception())

    def describe(self) -> list[dict[str, Any]]:
        """How every node runs, per predictor (for `seldon get`)."""
        return [
            {
                "predictor": p.name,
                "traffic": p.traffic,
                "shadow": p.shadow,
                "nodes": [{"name": n.name, "runs": n.runner.describe()} for n in p.root.walk()],
            }
            for p in self.predictors
        ]

    def runners(self) -> list[Any]:
        return [node.runner for p in self.predictors for node in p.root.walk()]

    async def close(self) -> None:
        for runner in self.runners():
            try:
                await runner.close()
            except Exception as exc:  # closing must never break an apply
                log.warning("closing a node of %s: %s", self.name, exc)


def build_deployment(
    sdep: SeldonDeployment,
    *,
    namespace: str = "default",
    base_dir: Path | None = None,
    store: StateStore | None = None,
    max_message: int = 4 * 1024 * 1024,
) -> Deployment:
    name = deployment_name(sdep)
    ctx = CompileContext(name, namespace, base_dir, store, max_message)
    serving = [p for p in sdep.spec.predictors if not p.shadow]
    explicit = any(p.traffic for p in serving)
    predictors = []
    for predictor in sdep.spec.predictors:
        root = compile_graph(predictor.graph, predictor, sdep, ctx)
        traffic = float(predictor.traffic or 0) if explicit else 100.0 / max(1, len(serving))
        predictors.append(
            Predictor(
                name=predictor.name,
                root=root,
                traffic=traffic,
                shadow=bool(predictor.shadow),
                node_names=frozenset(n.name for n in root.walk()),
            )
        )
    return Deployment(name=name, namespace=namespace, manifest=sdep, predictors=predictors)
