"""Compile a SeldonDeployment predictor into a tree of GraphNodes.

How each node runs is decided here, once, at apply time (and shown by `seldon get`):
1. a built-in implementation (RANDOM_ABTEST, AVERAGE_COMBINER, SIMPLE_MODEL, SIMPLE_ROUTER);
2. an endpoint with service_host/service_port: called remotely over REST or gRPC;
3. a container whose image is one of the seed's images: the built-in component, in-process;
4. a container whose env MODEL_NAME names a Python class (Seldon's s2i convention, with
   SERVICE_TYPE) importable from the manifest's directory: in-process;
anything else is refused with one sentence saying what to provide.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seldon_serving.components.adapter import ComponentAdapter
from seldon_serving.components.builtin.registry import builtin_for_image
from seldon_serving.components.loader import load_user_class
from seldon_serving.engine.builtins import BuiltinRunner, builtin_runner
from seldon_serving.engine.graph import GraphNode
from seldon_serving.engine.remote import GrpcRunner, RestRunner
from seldon_serving.engine.runners import LocalRunner, NodeRunner
from seldon_serving.spec.graph import find_container, is_builtin, unit_image
from seldon_serving.spec.models import PredictiveUnit, PredictorSpec, SeldonDeployment
from seldon_serving.spec.params import typed_parameters
from seldon_serving.state.base import StateHandle, StateStore

# Which steps a node does, by type (Seldon's defaults); UNKNOWN_TYPE uses its `methods`.
_TYPE_METHODS = {
    "MODEL": {"TRANSFORM_INPUT", "SEND_FEEDBACK"},
    "TRANSFORMER": {"TRANSFORM_INPUT"},
    "OUTPUT_TRANSFORMER": {"TRANSFORM_OUTPUT"},
    "ROUTER": {"ROUTE", "SEND_FEEDBACK"},
    "COMBINER": {"AGGREGATE"},
}
_BUILTIN_METHODS = {
    "SIMPLE_MODEL": {"TRANSFORM_INPUT"},
    "SIMPLE_ROUTER": {"ROUTE"},
    "RANDOM_ABTEST": {"ROUTE"},
    "AVERAGE_COMBINER": {"AGGREGATE"},
}
DEFAULT_TIMEOUT_MS = 5000.0  # Seldon's engine read timeout


class CompileError(ValueError):
    """A node cannot run here; the message says which node and what to provide."""


@dataclass(slots=True)
class CompileContext:
    deployment: str
    namespace: str
    base_dir: Path | None
    store: StateStore | None
    max_message: int = 4 * 1024 * 1024


def _annotation(sdep: SeldonDeployment, predictor: PredictorSpec, key: str) -> str | None:
    for source in (predictor.annotations, sdep.spec.annotations):
        if source and key in source:
            return str(source[key])
    return None


def _env(container: Any) -> dict[str, str]:
    return {e.name: e.value or "" for e in (container.env if container is not None else [])}


def _make_user_object(cls: type, parameters: dict[str, Any], state: StateHandle | None, node: str) -> Any:
    kwargs = dict(parameters)
    if state is not None and "state" in inspect.signature(cls).parameters:
        kwargs["state"] = state
    try:
        return cls(**kwargs)
    except Exception as exc:
        raise CompileError(f"node '{node}': {cls.__name__}({', '.join(kwargs)}) failed: {exc}") from None


def _runner(unit: PredictiveUnit, predictor: PredictorSpec, ctx: CompileContext) -> tuple[NodeRunner, str]:
    """The runner of one node and the service type it runs as."""
    name = unit.name
    declared = unit.type.value if unit.type else None
    parameters = typed_parameters(unit)
    if is_builtin(unit):
        implementation = unit.implementation.value  # type: ignore[union-attr]
        return builtin_runner(
            name, implementation, parameters, len(unit.children)
        ), declared or "UNKNOWN_TYPE"

    endpoint = unit.endpoint
    if endpoint is not None and endpoint.service_host and endpoint.service_port:
        kind = declared or "MODEL"
        runner_class = GrpcRunner if endpoint.type and endpoint.type.value == "GRPC" else RestRunner
        return runner_class(name, endpoint.service_host, endpoint.service_port, kind, ctx.max_message), kind

    container = find_container(predictor, name)
    image = (container.image or "") if container is not None else ""
    env = _env(container)
    state = None
    if ctx.store is not None:
        state = StateHandle(
            ctx.store, "components", f"{ctx.namespace}/{ctx.deployment}/{predictor.name}/{name}"
        )
    found = builtin_for_image(image) if image and "MODEL_NAME" not in env else None
    if found is not None:
        cls, kind = found
        label = f"{cls.__name__} (built-in for {image})"
    elif env.get("MODEL_NAME"):
        search = [ctx.base_dir] if ctx.base_dir is not None else []
        cls = load_user_class(env["MODEL_NAME"], search)
        kind = env.get("SERVICE_TYPE", declared or "MODEL").upper()
        label = env["MODEL_NAME"]
    elif unit.implementation is not None and unit.implementation.value.endswith("_SERVER"):
        raise CompileError(
            f"node '{name}' uses the prepackaged {unit.implementation.value}, which runs only on a cluster: "
            "serve the model with `seldon microservice` and give the node an endpoint "
            "(service_host, service_port) instead"
        )
    else:
        what = f"image '{image}' is not a built-in image" if image else "has no container"
        raise CompileError(
            f"node '{name}' {what}: give its container env MODEL_NAME (a Python class in the manifest's "
            f"directory), an endpoint with service_host and service_port, or a built-in implementation"
        )
    kind = declared or kind
    if kind == "OUTLIER_DETECTOR":
        kind = "TRANSFORMER"
    user_object = _make_user_object(cls, parameters, state, name)
    adapter = ComponentAdapter(user_object, unit_id=name, image=image or None, service_type=kind)
    adapter.load()
    return LocalRunner(adapter, name, kind, label), kind


def _request_path(unit: PredictiveUnit, predictor: PredictorSpec) -> str:
    """What meta.requestPath shows for a node: its image, else its implementation or class (SPEC 4)."""
    image = unit_image(predictor, unit)
    if image:
        return image
    if is_builtin(unit):
        return unit.implementation.value  # type: ignore[union-attr]
    container = find_container(predictor, unit.name)
    return (container.env_value("MODEL_NAME") or "") if container is not None else ""


def _methods(unit: PredictiveUnit, kind: str) -> set[str]:
    if is_builtin(unit):
        return _BUILTIN_METHODS[unit.implementation.value]  # type: ignore[union-attr]
    if unit.type is None or unit.type.value == "UNKNOWN_TYPE":
        if unit.methods:
            return {m.value for m in unit.methods}
        return _TYPE_METHODS.get(kind, set())
    return _TYPE_METHODS.get(unit.type.value, set())


def compile_graph(
    unit: PredictiveUnit, predictor: PredictorSpec, sdep: SeldonDeployment, ctx: CompileContext
) -> GraphNode:
    runner, kind = _runner(unit, predictor, ctx)
    methods = _methods(unit, kind)
    # Seldon's engine read timeout: per transport; in-process nodes follow the REST one.
    over_grpc = (
        unit.endpoint is not None and unit.endpoint.type is not None and unit.endpoint.type.value == "GRPC"
    )
    key = "seldon.io/grpc-read-timeout" if over_grpc else "seldon.io/rest-read-timeout"
    annotation = _annotation(sdep, predictor, key)
    try:
        timeout_ms = float(annotation) if annotation else DEFAULT_TIMEOUT_MS
    except ValueError:
        raise CompileError(f"annotation {key}={annotation!r} is not a number of milliseconds") from None
    return GraphNode(
        name=unit.name,
        runner=runner,
        image=_request_path(unit, predictor),
        children=[compile_graph(child, predictor, sdep, ctx) for child in unit.children],
        does_input="TRANSFORM_INPUT" in methods,
        does_route="ROUTE" in methods,
        does_aggregate="AGGREGATE" in methods,
        does_output="TRANSFORM_OUTPUT" in methods,
        does_feedback="SEND_FEEDBACK" in methods,
        # A timer only helps where the wait can be interrupted (remote calls, async or threaded
        # user code); a plain sync method blocks the loop anyway, and the timer costs every call.
        timeout=timeout_ms / 1000.0 if timeout_ms > 0 and runner_can_wait(runner) else None,
    )


def runner_can_wait(runner: NodeRunner) -> bool:
    if isinstance(runner, LocalRunner):
        return runner.awaits_anything
    return not isinstance(runner, BuiltinRunner)
