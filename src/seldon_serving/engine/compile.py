"""Build the running nodes of a predictor from its plan (`engine.plan` decides how each
node runs; this module makes it so): built-in and user classes run in-process through the
component adapter, remote nodes through a pooled REST or gRPC client.

A model server node is a user class whose `model_uri` is made local first: its modelUri is
resolved (a local path or claim checked, an s3:// or gs:// model downloaded into the cache
once) where `set_model_places` says, and its framework must be installed.  Each failure is
one sentence naming the node and the URI, and fails the build like any other.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from seldon_serving.components.adapter import ComponentAdapter
from seldon_serving.components.batching import Batcher, why_not_batched
from seldon_serving.components.loader import instantiate, load_user_class
from seldon_serving.components.metadata import parse_model_metadata
from seldon_serving.components.storage import ModelUriError, resolve_model_uri
from seldon_serving.engine.graph import GraphNode
from seldon_serving.engine.plan import (
    BUILTIN,
    INLINE,
    PROCESS,
    REMOTE,
    THREAD,
    UNAVAILABLE,
    USER_CLASS,
    NodePlan,
    server_problem,
)
from seldon_serving.engine.process import ProcessRunner, ProcessStartError, process_runner
from seldon_serving.engine.remote import GrpcRunner, RestRunner
from seldon_serving.engine.runners import LocalRunner, NodeRunner
from seldon_serving.protocol.errors import ServingError
from seldon_serving.protocol.message import SeldonMessage
from seldon_serving.settings import DEFAULT_MAX_MESSAGE, ModelPlaces, NodeTls
from seldon_serving.state.base import StateHandle, StateStore

log = logging.getLogger("seldon_serving.engine")


class CompileError(ServingError):
    """A node cannot be built; the message says which node and why."""


@dataclass(slots=True)
class CompileContext:
    deployment: str
    namespace: str
    predictor: str
    base_dir: Path | None
    store: StateStore | None
    max_message: int = DEFAULT_MAX_MESSAGE  # of the gRPC channels to remote nodes
    execution: str = INLINE  # user classes whose manifest names no mode run so
    node_tls: NodeTls | None = None  # TLS to remote nodes (None: plain text); process nodes stay plain


THREAD_POOL = 8  # threads per `thread` node: enough for overlapping calls, bounded

# Where model servers' modelUris are found: one setting for the whole process (`seldon serve
# --pvc-root / --model-cache`, set in each worker before it builds anything).
_places = ModelPlaces()


def set_model_places(places: ModelPlaces) -> None:
    """Where every model server node this process builds finds its model (see `ModelPlaces`)."""
    global _places
    _places = places


def model_places() -> ModelPlaces:
    return _places


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def local_model(plan: NodePlan, base_dir: Path | None) -> Path:
    """The local path of a model server node's model (downloaded into the cache if remote);
    ModelUriError (naming the URI) if there is none.  A relative path is relative to the
    manifest's directory, as a MODEL_NAME class's file is."""
    uri = plan.model_uri
    if base_dir is None or _SCHEME.match(uri) or Path(uri).expanduser().is_absolute():
        return resolve_model_uri(uri, pvc_root=_places.pvc_root, cache_dir=_places.cache_dir)
    try:
        return resolve_model_uri(str(base_dir / uri))
    except ModelUriError as exc:  # named as the user wrote it (the sentence shows the full path too)
        raise ModelUriError(str(exc).replace(repr(str(base_dir / uri)), repr(uri), 1)) from None


def _server_plan(plan: NodePlan, ctx: CompileContext) -> NodePlan:
    """A model server node with its framework checked and its model made local (CompileError,
    one sentence naming the node and the URI, if either fails)."""
    assert plan.server is not None
    problem = server_problem(plan)
    if problem is not None:
        raise CompileError(problem)
    try:
        path = local_model(plan, ctx.base_dir)
    except ModelUriError as exc:  # its sentence names the URI
        raise CompileError(f"node '{plan.name}' ({plan.server.implementation}): {exc}") from None
    return replace(plan, parameters={**plan.parameters, "model_uri": str(path)})


def execution_of(plan: NodePlan, ctx: CompileContext) -> str:
    """How a node runs: built-ins inline, a user class as its manifest says or the server's default."""
    if plan.how != USER_CLASS:
        return INLINE
    return plan.execution or ctx.execution


def _local_runner(plan: NodePlan, ctx: CompileContext) -> LocalRunner:
    if plan.how == BUILTIN:
        assert plan.builtin is not None
        cls = plan.builtin.cls
    else:
        assert plan.model_name is not None
        search = [ctx.base_dir] if ctx.base_dir is not None else []
        cls = load_user_class(plan.model_name, search)
    state = None
    if ctx.store is not None:
        key = f"{ctx.namespace}/{ctx.deployment}/{ctx.predictor}/{plan.name}"
        state = StateHandle(ctx.store, "components", key)
    threaded = execution_of(plan, ctx) == THREAD
    # A bounded pool of its own: a node whose calls hang uses up its threads, nobody else's.
    executor = ThreadPoolExecutor(THREAD_POOL, thread_name_prefix=f"node-{plan.name}") if threaded else None
    adapter = ComponentAdapter(
        instantiate(cls, plan.parameters, state),
        unit_id=plan.name,
        image=plan.image or None,
        service_type=plan.service_type,
        executor=executor,
        model_metadata=parse_model_metadata(plan.model_metadata),
    )
    adapter.load()
    label = f"{plan.label}, {THREAD_POOL} threads" if threaded else plan.label
    batcher = _batcher(plan, ctx, adapter)
    if batcher is not None:
        return BatchedRunner(adapter, plan.name, plan.service_type, label, executor, batcher)
    return LocalRunner(adapter, plan.name, plan.service_type, label, executor)


class BatchedRunner(LocalRunner):
    """An in-process MODEL node whose predict calls are batched (`components.batching`)."""

    def __init__(
        self,
        adapter: ComponentAdapter,
        node: str,
        service_type: str,
        label: str,
        executor: ThreadPoolExecutor | None,
        batcher: Batcher,
    ) -> None:
        super().__init__(adapter, node, service_type, label, executor)
        self.batcher = batcher
        # A request waits for its batch on the loop: a node timeout can always end that wait.
        self.awaits_anything = True

    async def transform_input(self, msg: SeldonMessage) -> SeldonMessage:
        return await self.batcher.predict(msg)

    def describe(self) -> str:
        batcher = self.batcher
        if not batcher.splittable:
            return f"{super().describe()}, not batched (its answers cannot be split by request)"
        return (
            f"{super().describe()}, batching up to {batcher.max_batch_size} requests "
            f"({batcher.max_batch_time * 1000:g} ms)"
        )


def _batcher(plan: NodePlan, ctx: CompileContext, adapter: ComponentAdapter) -> Batcher | None:
    """The batcher of a MODEL node whose manifest asks for batching, if its class can be batched
    (else a warning says why not)."""
    if plan.max_batch_size <= 1 or plan.service_type != "MODEL":
        return None
    problem = why_not_batched(adapter.methods)
    if problem is not None:
        log.warning("node %r of %s: adaptive batching is off: %s", plan.name, ctx.deployment, problem)
        return None

    async def predict(msg: SeldonMessage, raw: bool) -> SeldonMessage:
        return await adapter.predict(msg, raw=raw)

    # The labels of the gateway's other per-node metrics that identify the node.
    labels = {"deployment_name": ctx.deployment, "predictor_name": ctx.predictor, "model_name": plan.name}
    return Batcher(
        predict,
        max_batch_size=plan.max_batch_size,
        max_batch_time_ms=plan.max_batch_time_ms,
        node=plan.name,
        labels=labels,
    )


def _runner(plan: NodePlan, ctx: CompileContext) -> NodeRunner:
    if plan.how == UNAVAILABLE:
        raise CompileError(plan.problem)
    if plan.how == REMOTE:
        runner_class = GrpcRunner if plan.transport == "GRPC" else RestRunner
        return runner_class(
            plan.name, plan.host, plan.port, plan.service_type, ctx.max_message, tls=ctx.node_tls
        )
    where = f"node '{plan.name}'"
    if plan.server is not None:
        # A model that does not load is the model's fault: say which one.
        where = f"node '{plan.name}' ({plan.server.implementation}, modelUri '{plan.model_uri}')"
        plan = _server_plan(plan, ctx)
    try:
        if execution_of(plan, ctx) == PROCESS:
            return process_runner(plan, ctx)
        return _local_runner(plan, ctx)
    except ProcessStartError as exc:
        # The child's own output (its traceback) is in the log already: ours would add nothing.
        raise CompileError(f"{where}: {exc}") from None
    except ServingError as exc:
        raise CompileError(f"{where}: {exc}") from exc


def runner_can_wait(runner: NodeRunner) -> bool:
    """Whether a timer can interrupt a call: remote calls and async or threaded user code can
    be; a plain sync method blocks the loop anyway, and the timer costs every call."""
    if isinstance(runner, LocalRunner):
        return runner.awaits_anything
    return True


def stop_started(runners: Iterable[NodeRunner]) -> None:
    """The runners of a build that failed: their deployment will never be closed, so a
    process node's child is stopped now."""
    for runner in runners:
        if isinstance(runner, ProcessRunner):
            runner.terminate()


def _start_processes(plan: NodePlan, ctx: CompileContext) -> dict[str, NodeRunner]:
    """The `process` nodes of a graph, started together (node path -> runner): each child spends
    its first second or two importing (a framework, the user's module), so a graph of N of them
    is ready in about the time of the slowest, not of all in turn."""
    nodes = [n for n in plan.walk() if n.how == USER_CLASS and execution_of(n, ctx) == PROCESS]
    if len(nodes) < 2:
        return {}
    with ThreadPoolExecutor(len(nodes), thread_name_prefix="node-start") as pool:
        futures = [pool.submit(_runner, node, ctx) for node in nodes]
        started: dict[str, NodeRunner] = {}
        failure: BaseException | None = None
        for node, future in zip(nodes, futures, strict=True):
            try:
                started[node.path] = future.result()
            except BaseException as exc:  # the first failure in graph order is the one reported
                failure = failure or exc
    if failure is not None:
        stop_started(started.values())
        raise failure
    return started


def compile_graph(plan: NodePlan, ctx: CompileContext) -> GraphNode:
    """The running tree of nodes for a predictor's plan."""
    started = _start_processes(plan, ctx)
    try:
        return _compile(plan, ctx, started)
    except BaseException:
        stop_started(started.values())  # terminating a runner twice is harmless
        raise


def _compile(plan: NodePlan, ctx: CompileContext, started: dict[str, NodeRunner]) -> GraphNode:
    runner = started.get(plan.path) or _runner(plan, ctx)
    children: list[GraphNode] = []
    try:
        for child in plan.children:
            children.append(_compile(child, ctx, started))
    except BaseException:
        stop_started([runner, *(node.runner for built in children for node in built.walk())])
        raise
    methods = plan.methods
    if isinstance(runner, LocalRunner) and not runner.adapter.implements("send_feedback"):
        methods -= {"SEND_FEEDBACK"}  # nothing to tell a class without send_feedback
    limit = plan.timeout_ms / 1000.0 if plan.timeout_ms > 0 else None
    waits = runner_can_wait(runner)
    timeout = limit if waits else None
    # Inline sync code cannot be interrupted: an answer later than the timeout is still a 504.
    overrun = limit if not waits else None
    return GraphNode(
        name=plan.name,
        runner=runner,
        image=plan.request_path,
        children=children,
        does_input="TRANSFORM_INPUT" in methods,
        does_route="ROUTE" in methods,
        does_aggregate="AGGREGATE" in methods,
        does_output="TRANSFORM_OUTPUT" in methods,
        does_feedback="SEND_FEEDBACK" in methods,
        timeout=timeout,
        overrun=overrun,
    )
