"""A running deployment: its predictors' graphs, the traffic split between them, and
shadows that get a copy of the traffic whose answers are discarded."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from seldon_serving.engine import graph
from seldon_serving.engine.compile import CompileContext, compile_graph, stop_started
from seldon_serving.engine.graph import GraphNode
from seldon_serving.engine.plan import plan_predictor
from seldon_serving.protocol.message import Feedback, SeldonMessage
from seldon_serving.settings import DEFAULT_MAX_MESSAGE, NodeTls
from seldon_serving.spec.models import SeldonDeployment
from seldon_serving.spec.validation import deployment_name
from seldon_serving.state.base import StateStore

log = logging.getLogger("seldon_serving.engine")


class Observer(Protocol):
    """Where a deployment reports what Prometheus exports (implemented by the server edges)."""

    def custom_metrics(
        self, deployment: str, predictor: str, node: GraphNode, metrics: list[dict[str, Any]]
    ) -> None: ...

    def feedback(self, deployment: str, predictor: str, node: GraphNode, reward: float) -> None: ...


@dataclass(slots=True, eq=False)
class Predictor:
    name: str
    root: GraphNode
    traffic: float
    shadow: bool
    node_names: frozenset[str]
    node_paths: frozenset[tuple[str, str]]  # (node, requestPath value): canaries differ by image
    forwards: bool = False  # its root is another engine that walks the graph (`graph.forward`)


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
    observer: Observer | None = None
    inflight: int = 0  # requests holding this object (a swapped-out deployment closes at 0)

    def __post_init__(self) -> None:
        self._serving = [p for p in self.predictors if not p.shadow]
        self._shadows = [p for p in self.predictors if p.shadow]
        self._weights = [p.traffic for p in self._serving]

    @property
    def primary(self) -> Predictor:
        """The first serving predictor (what metadata describes)."""
        return self._serving[0]

    def pick(self) -> Predictor:
        """The predictor that answers the next request (traffic split between non-shadows)."""
        if len(self._serving) == 1:
            return self._serving[0]
        return random.choices(self._serving, weights=self._weights)[0]

    async def predict(self, request: SeldonMessage) -> SeldonMessage:
        return await self.predict_on(self.pick(), request)

    async def predict_on(self, chosen: Predictor, request: SeldonMessage) -> SeldonMessage:
        """Answer with `chosen`; every shadow gets a copy whose answer is discarded."""
        for shadow in self._shadows:
            self._spawn(self._run(shadow, request))
        return await self._run(chosen, request)

    def _run(self, predictor: Predictor, request: SeldonMessage) -> Awaitable[SeldonMessage]:
        if predictor.forwards:
            return graph.forward(predictor.root, request)
        return graph.predict(predictor.root, request, self._metrics_sink(predictor))

    def _metrics_sink(self, predictor: Predictor) -> graph.MetricsSink | None:
        observer = self.observer
        if observer is None:
            return None
        return lambda node, metrics: observer.custom_metrics(self.name, predictor.name, node, metrics)

    def predictor_for_feedback(self, feedback: Feedback) -> Predictor:
        """The predictor that answered: the one whose nodes (and images) the response's routing
        and requestPath name best; a tie (or no meta) goes by the traffic split, as in Seldon."""
        if len(self._serving) == 1 or feedback.response is None:
            return self.pick()
        path = feedback.response.meta.get("requestPath") or {}
        names = set(feedback.routing()) | set(path)
        if not names:
            return self.pick()
        pairs = set(path.items())
        scores = [(len(p.node_paths & pairs), len(p.node_names & names)) for p in self._serving]
        best = max(scores)
        if best == (0, 0):
            return self.pick()
        tied = [p for p, score in zip(self._serving, scores, strict=True) if score == best]
        if len(tied) == 1:
            return tied[0]
        return (
            random.choices(tied, weights=[p.traffic for p in tied])[0]
            if any(p.traffic for p in tied)
            else tied[0]
        )

    async def send_feedback(self, feedback: Feedback) -> None:
        await self.feedback_on(self.predictor_for_feedback(feedback), feedback)

    async def feedback_on(self, predictor: Predictor, feedback: Feedback) -> None:
        observer = self.observer
        sink: graph.FeedbackSink | None = None
        if observer is not None:
            sink = lambda node, reward: observer.feedback(self.name, predictor.name, node, reward)  # noqa: E731
        await graph.send_feedback(predictor.root, feedback, sink)

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
                "nodes": [_node_view(n) for n in p.root.walk()],
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


def _node_view(node: GraphNode) -> dict[str, Any]:
    """How a node runs, and the state a stateful built-in keeps (a router's counts, a detector's)."""
    view: dict[str, Any] = {"name": node.name, "runs": node.runner.describe()}
    summary = getattr(getattr(node.runner, "user_object", None), "state_summary", None)
    if callable(summary):
        try:
            view["state"] = summary()
        except Exception as exc:  # showing state must never break `seldon get`
            view["state"] = {"error": f"{type(exc).__name__}: {exc}"}
    return view


def traffic_shares(sdep: SeldonDeployment) -> list[float]:
    """Each predictor's share of the traffic: its `traffic`, or an even split when none says."""
    serving = [p for p in sdep.spec.predictors if not p.shadow]
    explicit = any(p.traffic for p in serving)
    return [float(p.traffic or 0) if explicit else 100.0 / max(1, len(serving)) for p in sdep.spec.predictors]


def build_deployment(
    sdep: SeldonDeployment,
    *,
    namespace: str = "default",
    base_dir: Path | None = None,
    store: StateStore | None = None,
    max_message: int = DEFAULT_MAX_MESSAGE,
    execution: str = "inline",
    node_tls: NodeTls | None = None,
) -> Deployment:
    """Plan and build every predictor of `sdep` (ManifestError if a node cannot run here,
    CompileError if it could not be built); `execution` is how user classes whose manifest
    names no mode run; `node_tls`, how remote nodes are called over TLS (None: plain text)."""
    name = deployment_name(sdep)
    shares = traffic_shares(sdep)
    predictors: list[Predictor] = []
    try:
        for index, predictor in enumerate(sdep.spec.predictors):
            ctx = CompileContext(
                name, namespace, predictor.name, base_dir, store, max_message, execution, node_tls
            )
            root = compile_graph(plan_predictor(sdep, index), ctx)
            traffic = shares[index]
            predictors.append(
                Predictor(
                    name=predictor.name,
                    root=root,
                    traffic=traffic,
                    shadow=bool(predictor.shadow),
                    node_names=frozenset(n.name for n in root.walk()),
                    node_paths=frozenset((n.name, n.image) for n in root.walk()),
                )
            )
    except BaseException:
        stop_started(node.runner for p in predictors for node in p.root.walk())
        raise
    return Deployment(name=name, namespace=namespace, manifest=sdep, predictors=predictors)
