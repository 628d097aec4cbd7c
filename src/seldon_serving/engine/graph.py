"""The graph walk: one request (or one feedback) through one predictor's tree of nodes.

Semantics follow Seldon's engine (SPEC 4): input step, route, children
(concurrently when several), aggregate, output step; `meta.routing` for every
node with children, `meta.requestPath` for every node visited, tags merged,
custom metrics collected.  What each node does is decided once, when the graph
is compiled, so the walk itself is a few attribute checks per node.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from seldon_serving.engine import remote_v2
from seldon_serving.engine.remote_v2 import not_supported
from seldon_serving.engine.runners import LocalRunner, NodeRunner
from seldon_serving.protocol.errors import (
    BadRequest,
    InvalidRouting,
    MicroserviceError,
    NodeTimeout,
    SeldonError,
)
from seldon_serving.protocol.message import V2, Feedback, SeldonMessage

T = TypeVar("T")


NodeHook = Callable[["GraphNode", str, Any, Awaitable[Any]], Awaitable[Any]]
"""Wraps one step of one node: `(node, step, given, work) -> awaitable of work's result`, where
`step` is predict, route, aggregate, transform-output or send-feedback and `given` what the step
was given (the message; the list of messages for aggregate; the Feedback).  Request logging,
tracing and per-node metrics are hooks; a node without hooks pays one check per step."""


@dataclass(slots=True, eq=False)
class GraphNode:
    name: str
    runner: NodeRunner
    image: str = ""
    children: list[GraphNode] = field(default_factory=list)
    does_input: bool = False  # MODEL -> predict, TRANSFORMER -> transform-input
    does_route: bool = False
    does_aggregate: bool = False
    does_output: bool = False
    does_feedback: bool = False
    timeout: float | None = None  # seconds, per call
    # Inline sync code cannot be interrupted: an answer later than this (seconds) is a 504 anyway.
    overrun: float | None = None
    hooks: tuple[NodeHook, ...] = ()  # outermost last; set when its deployment is installed

    def walk(self) -> list[GraphNode]:
        nodes = [self]
        for child in self.children:
            nodes.extend(child.walk())
        return nodes


MetricsSink = Callable[[GraphNode, list[dict[str, Any]]], None]
"""Told, after a request, which node returned which custom metrics (for Prometheus)."""

FeedbackSink = Callable[[GraphNode, float], None]
"""Told, per node a feedback visited, the reward (Seldon's feedback counters)."""


class _Trace:
    """What one request collects on its way through the graph."""

    __slots__ = ("metrics", "request_path", "routing", "sources")

    def __init__(self, keep_sources: bool) -> None:
        self.routing: dict[str, int] = {}
        self.request_path: dict[str, str] = {}
        self.metrics: list[dict[str, Any]] = []
        # (node, its metrics), only when someone exports them: most requests carry none.
        self.sources: list[tuple[GraphNode, list[dict[str, Any]]]] | None = [] if keep_sources else None

    def collect(self, node: GraphNode, meta: dict[str, Any]) -> None:
        metrics = meta.pop("metrics", None)
        if metrics:
            self.metrics.extend(metrics)
            if self.sources is not None:
                self.sources.append((node, metrics))


def new_puid() -> str:
    # ~26 base-32 characters like Seldon's engine (130 random bits).
    return format(secrets.randbits(130), "x")


async def _call(node: GraphNode, step: str, coro: Awaitable[T], given: Any = None) -> T:
    """Run one node step with its timeout (and its hooks, inside the timeout); failures name
    the node."""
    for hook in node.hooks:
        coro = hook(node, step, given, coro)
    try:
        if node.timeout is None:
            if node.overrun is None:
                return await coro
            started = time.perf_counter()
            result = await coro
            took = time.perf_counter() - started
            if took > node.overrun:
                raise NodeTimeout(
                    f"node '{node.name}' answered {step} after {took:.3g} s, over its timeout of "
                    f"{node.overrun:g} s (it runs inline: run it in a thread or process to answer on time)",
                    node=node.name,
                )
            return result
        # asyncio.timeout, not wait_for: wait_for wraps the call in a new task, which costs
        # several event-loop rounds per node on the hot path.
        async with asyncio.timeout(node.timeout):
            return await coro
    except TimeoutError:
        raise NodeTimeout(
            f"node '{node.name}' did not answer {step} within {node.timeout:g} s", node=node.name
        ) from None
    except BadRequest as error:
        if error.node is not None:  # a remote runner already named the node
            raise
        raise type(error)(f"node '{node.name}': {error.info}", node=node.name) from None
    except SeldonError as error:
        if error.node is not None:  # already named by a deeper node
            raise
        # Keep the class when it says something precise (timeout, unavailable, routing);
        # anything else a node raises is "Microservice error" naming the node.
        kind = (
            type(error) if error.http_status in (503, 504) or error.code in (204, 207) else MicroserviceError
        )
        raise kind(f"node '{node.name}' failed: {error.info}", node=node.name) from None
    except Exception as exc:
        raise MicroserviceError(
            f"node '{node.name}' failed: {type(exc).__name__}: {exc}", node=node.name
        ) from None


def _merge_meta(node: GraphNode, answer: SeldonMessage, given: SeldonMessage, trace: _Trace) -> None:
    """Keep the component's meta, collect its metrics, re-apply the incoming puid and tags."""
    meta = answer.meta
    trace.collect(node, meta)
    given_tags = given.meta.get("tags")
    if given_tags:
        tags = meta.get("tags")
        meta["tags"] = {**tags, **given_tags} if tags else dict(given_tags)
    puid = given.meta.get("puid")
    if puid:
        meta["puid"] = puid


def _remote_v2(node: GraphNode, step: str, msg: SeldonMessage) -> Awaitable[SeldonMessage]:
    """A V2 request's step at a node of another process: the node's own V2 inference (its input
    step; an output transformer's output step), where its runner speaks V2 (`remote_v2`)."""
    runner = node.runner
    # Its V2 inference is its input step; only a node with no input step can give its output step.
    if step != "predict" and node.does_input:
        raise not_supported(node.name, step, runner.describe())
    return remote_v2.infer(runner, msg)


def _v2_elsewhere(node: GraphNode, msg: SeldonMessage) -> bool:
    # In-process nodes take V2 messages through the adapter; the others need V2 on the wire.
    return msg.form == V2 and not isinstance(node.runner, LocalRunner)


async def _walk(node: GraphNode, msg: SeldonMessage, trace: _Trace) -> SeldonMessage:
    trace.request_path[node.name] = node.image
    if node.does_input:
        if _v2_elsewhere(node, msg):
            answer = await _call(node, "predict", _remote_v2(node, "predict", msg), msg)
        else:
            answer = await _call(node, "predict", node.runner.transform_input(msg), msg)
        if answer is msg:
            answer = SeldonMessage(
                msg.form, msg.payload, msg.names, msg.copy_meta(), msg.status, msg.tf_dtype
            )
        _merge_meta(node, answer, msg, trace)
        msg = answer
    if not node.children:
        return msg
    if node.does_route and _v2_elsewhere(node, msg):
        raise not_supported(node.name, "route", node.runner.describe())
    branch = await _call(node, "route", node.runner.route(msg), msg) if node.does_route else -1
    if not -1 <= branch < len(node.children):
        raise InvalidRouting(
            f"router '{node.name}' chose branch {branch}, but it has {len(node.children)} children",
            node=node.name,
        )
    trace.routing[node.name] = branch
    if branch >= 0:
        outputs = [await _walk(node.children[branch], msg, trace)]
    elif len(node.children) == 1:
        outputs = [await _walk(node.children[0], msg, trace)]
    else:
        outputs = list(await asyncio.gather(*(_walk(child, msg, trace) for child in node.children)))
    if node.does_aggregate:
        if _v2_elsewhere(node, outputs[0]):
            raise not_supported(node.name, "aggregate", node.runner.describe())
        answer = await _call(node, "aggregate", node.runner.aggregate(outputs), outputs)
        trace.collect(node, answer.meta)
    else:
        answer = outputs[0]  # a non-combiner keeps the first output, as Seldon's engine does
    for output in outputs:
        tags = output.meta.get("tags")
        if tags and output is not answer:
            answer.meta.setdefault("tags", {}).update(tags)
    if node.does_output:
        before = answer
        if _v2_elsewhere(node, answer):
            answer = await _call(
                node, "transform-output", _remote_v2(node, "transform-output", answer), answer
            )
        else:
            answer = await _call(node, "transform-output", node.runner.transform_output(answer), answer)
        if answer is before:
            return answer
        _merge_meta(node, answer, before, trace)
    return answer


async def predict(
    root: GraphNode, request: SeldonMessage, on_metrics: MetricsSink | None = None
) -> SeldonMessage:
    """One request through the graph; the answer carries routing, requestPath, metrics and puid.

    `on_metrics` (if given) is told which node returned which custom metrics, once the
    request succeeded.
    """
    meta = request.copy_meta()
    puid = meta.get("puid") or new_puid()
    meta["puid"] = puid
    meta.pop("metrics", None)
    request = SeldonMessage(
        request.form, request.payload, request.names, meta, request.status, request.tf_dtype
    )
    trace = _Trace(on_metrics is not None)
    answer = await _walk(root, request, trace)
    if trace.sources:
        for node, metrics in trace.sources:
            on_metrics(node, metrics)  # type: ignore[misc]
    out_meta = answer.meta if answer is not request else dict(answer.meta)
    out_meta["puid"] = puid
    if trace.routing:
        out_meta["routing"] = trace.routing
    else:
        out_meta.pop("routing", None)
    out_meta["requestPath"] = trace.request_path
    if trace.metrics:
        out_meta["metrics"] = trace.metrics
    else:
        out_meta.pop("metrics", None)
    answer.meta = out_meta
    return answer


async def forward(root: GraphNode, request: SeldonMessage) -> SeldonMessage:
    """A predictor that is another engine (`EngineRunner`): its answer as it comes, meta included
    (that engine walked its own graph)."""
    return await _call(root, "predict", root.runner.transform_input(request), request)


async def send_feedback(root: GraphNode, feedback: Feedback, on_feedback: FeedbackSink | None = None) -> None:
    """Walk the graph following the response's routing; every node with feedback gets it whole.

    `on_feedback` is told about every node visited (Seldon counts feedback per node).
    """
    routing = feedback.routing()

    async def visit(node: GraphNode) -> None:
        branch = routing.get(node.name, -1)
        if branch == -1:
            children = node.children
        elif 0 <= branch < len(node.children):
            children = [node.children[branch]]
        else:
            children = []
        jobs = [visit(child) for child in children]
        if node.does_feedback:
            jobs.append(_call(node, "send-feedback", node.runner.send_feedback(feedback), feedback))
        if len(jobs) == 1:
            await jobs[0]
        elif jobs:
            await asyncio.gather(*jobs)
        if on_feedback is not None:
            on_feedback(node, feedback.reward)

    await visit(root)
