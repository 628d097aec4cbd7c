"""How each node of a predictor runs, decided from the manifest alone.

The one place that resolves a graph node, in this order:
1. `implementation` naming a built-in component (RANDOM_ABTEST, AVERAGE_COMBINER, ...);
2. an endpoint with service_host/service_port: called remotely over REST or gRPC;
3. `implementation` naming a model server (SKLEARN_SERVER, ..., or one the user registered):
   the server's class, given the node's `modelUri` as its `model_uri` parameter;
4. a container whose image is one of the seed's images: that built-in component;
5. a container whose env MODEL_NAME names a Python class (Seldon's s2i convention, with
   SERVICE_TYPE) found in the manifest's directory;
and checks what that choice needs (a built-in's parameters and children) with field
paths, without running any user code, importing a framework or reading a model (`seldon
validate` and `seldon k8s render` plan too, on machines that have neither).  A node none of
these can run (an image only a cluster can start) is not an error of the manifest: its plan
says why it cannot run here, and only building it fails.  `check_deployment` is the whole
check every manifest passes before anything starts; `compile` builds running nodes from the
plans.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from seldon_serving.components.batching import check_batching
from seldon_serving.components.builtin import Builtin, BuiltinParameterError
from seldon_serving.components.builtin.registry import (
    builtin_for_image,
    builtin_for_implementation,
    builtin_implementations,
)
from seldon_serving.components.loader import find_user_class, instantiate
from seldon_serving.components.servers.registry import ModelServer, known_servers
from seldon_serving.protocol.errors import ServingError
from seldon_serving.settings import EXECUTION_MODES
from seldon_serving.spec import ManifestError, validate
from seldon_serving.spec.enums import PREPACKAGED_SERVERS
from seldon_serving.spec.errors import join_path
from seldon_serving.spec.graph import find_container
from seldon_serving.spec.models import PredictiveUnit, PredictorSpec, SeldonDeployment
from seldon_serving.spec.params import typed_parameters

BUILTIN, USER_CLASS, REMOTE = "built-in", "class", "remote"
# How a user class runs in the gateway (`seldon.io/execution`); built-ins always run inline.
INLINE, THREAD, PROCESS = EXECUTION_MODES
EXECUTION = "seldon.io/execution"  # a node parameter, or a predictor / deployment annotation
PYTHON = "seldon.io/python"  # the interpreter of a process node (a virtualenv's python)
# Adaptive batching of a MODEL node's predict (see components.batching), set as EXECUTION is.
MAX_BATCH_SIZE = "seldon.io/max-batch-size"
MAX_BATCH_TIME_MS = "seldon.io/max-batch-time-ms"
RESERVED_PREFIX = "seldon.io/"  # node parameters of ours: never passed to the user's class
# A node this server cannot run (an image that only a cluster can start, a model server
# without an endpoint): valid, but its deployment fails here with `problem` as the reason.
UNAVAILABLE = "unavailable"
DEFAULT_TIMEOUT_MS = 5000.0  # Seldon's engine read timeout

# Which steps a node does, by type (Seldon's defaults); UNKNOWN_TYPE uses its `methods`.
TYPE_METHODS: dict[str, frozenset[str]] = {
    "MODEL": frozenset({"TRANSFORM_INPUT", "SEND_FEEDBACK"}),
    "TRANSFORMER": frozenset({"TRANSFORM_INPUT"}),
    "OUTPUT_TRANSFORMER": frozenset({"TRANSFORM_OUTPUT"}),
    "ROUTER": frozenset({"ROUTE", "SEND_FEEDBACK"}),
    "COMBINER": frozenset({"AGGREGATE"}),
}


@dataclass(frozen=True, slots=True)
class NodePlan:
    """One node, as it will run."""

    name: str
    path: str  # the node's field path in the manifest, for errors
    how: str  # BUILTIN, USER_CLASS or REMOTE
    service_type: str  # MODEL, ROUTER, TRANSFORMER, OUTPUT_TRANSFORMER, COMBINER (or UNKNOWN_TYPE)
    methods: frozenset[str]  # TRANSFORM_INPUT, ROUTE, AGGREGATE, TRANSFORM_OUTPUT, SEND_FEEDBACK
    parameters: dict[str, Any]
    request_path: str  # what meta.requestPath shows: the image, else the implementation or class
    timeout_ms: float  # per call; 0 or less: none
    label: str  # how `seldon get -o wide` names what runs it
    image: str = ""
    builtin: Builtin | None = None
    model_name: str | None = None  # MODEL_NAME of a user class
    transport: str = "REST"  # of a remote node
    host: str = ""
    port: int = 0
    problem: str = ""  # why an UNAVAILABLE node cannot run here
    model_metadata: str | None = None  # its container's MODEL_METADATA (JSON or YAML)
    # A user class's execution mode; "" leaves it to the server's default (`--execution`).
    execution: str = ""
    python: str | None = None  # a process node's own interpreter
    # A model server node: the server (its class is `model_name`) and the modelUri as written.
    server: ModelServer | None = None
    model_uri: str = ""
    # Adaptive batching of predict (in-process and process nodes): up to this many requests
    # per call (1: none), the first waiting at most max_batch_time_ms.
    max_batch_size: int = 1
    max_batch_time_ms: float = 0.0
    children: tuple[NodePlan, ...] = ()

    def walk(self) -> list[NodePlan]:
        nodes = [self]
        for child in self.children:
            nodes.extend(child.walk())
        return nodes


def _annotation(sdep: SeldonDeployment, predictor: PredictorSpec, key: str) -> tuple[str, str] | None:
    """(value, its field path) of an annotation, the predictor's before the deployment's."""
    for path, source in (("annotations", predictor.annotations), ("spec.annotations", sdep.spec.annotations)):
        if source and key in source:
            return str(source[key]), path
    return None


def _timeout_ms(sdep: SeldonDeployment, predictor: PredictorSpec, base: str, over_grpc: bool) -> float:
    # Seldon's engine read timeout: per transport; in-process nodes follow the REST one.
    key = "seldon.io/grpc-read-timeout" if over_grpc else "seldon.io/rest-read-timeout"
    found = _annotation(sdep, predictor, key)
    if found is None:
        return DEFAULT_TIMEOUT_MS
    value, where = found
    path = join_path(base, where) if where == "annotations" else where
    try:
        return float(value)
    except ValueError:
        raise ManifestError(path, f"{key}={value!r} is not a number of milliseconds") from None


def _builtin_problem(builtin: Builtin, unit: PredictiveUnit, path: str, parameters: dict[str, Any]) -> None:
    """A built-in's own rules: how many children it takes, and its parameters (it is built
    once, with no state, so its constructor checks them)."""
    problem = builtin.children_problem(len(unit.children), parameters)
    if problem is not None:
        raise ManifestError(join_path(path, "children"), problem)
    try:
        instantiate(builtin.cls, parameters)
    except BuiltinParameterError as exc:
        index = next((i for i, p in enumerate(unit.parameters) if p.name == exc.parameter), None)
        if exc.missing or index is None:
            raise ManifestError(join_path(path, "parameters"), exc.info) from None
        raise ManifestError(join_path(path, "parameters", index, "value"), exc.info) from None
    except ServingError as exc:
        raise ManifestError(join_path(path, "parameters"), str(exc)) from None


def _plan_unit(
    unit: PredictiveUnit, path: str, predictor: PredictorSpec, base: str, sdep: SeldonDeployment
) -> NodePlan:
    declared = unit.type.value if unit.type else None
    try:
        parameters = typed_parameters(unit)
    except ManifestError as exc:
        raise ManifestError(join_path(path, exc.path), exc.reason) from None
    execution, python = _execution(unit, path, predictor, base, sdep)
    max_batch_size, max_batch_time_ms = _batching(unit, path, predictor, base, sdep)
    parameters = {k: v for k, v in parameters.items() if not k.startswith(RESERVED_PREFIX)}
    container = find_container(predictor, unit.name)
    image = (container.image or "") if container is not None else ""
    env = {e.name: e.value or "" for e in container.env} if container is not None else {}
    endpoint = unit.endpoint
    remote = endpoint is not None and bool(endpoint.service_host) and bool(endpoint.service_port)
    over_grpc = (
        remote and endpoint is not None and endpoint.type is not None and endpoint.type.value == "GRPC"
    )
    implementation = unit.implementation
    if implementation == "UNKNOWN_IMPLEMENTATION":
        implementation = None

    def plan(how: str, kind: str, request_path: str, label: str, **extra: Any) -> NodePlan:
        return NodePlan(
            name=unit.name,
            path=path,
            how=how,
            service_type=kind,
            methods=_methods(unit, kind),
            parameters=parameters,
            request_path=request_path,
            timeout_ms=_timeout_ms(sdep, predictor, base, over_grpc),
            label=label,
            image=image,
            model_metadata=env.get("MODEL_METADATA"),
            max_batch_size=max_batch_size,
            max_batch_time_ms=max_batch_time_ms,
            **extra,
        )

    builtin = builtin_for_implementation(implementation) if implementation else None
    if builtin is not None and implementation is not None:
        _builtin_problem(builtin, unit, path, parameters)
        label = f"{builtin.cls.__name__} (built-in {implementation})"
        return plan(BUILTIN, declared or builtin.service_type, implementation, label, builtin=builtin)
    if remote:
        assert endpoint is not None and endpoint.service_host and endpoint.service_port
        host, port = endpoint.service_host, endpoint.service_port
        transport = "GRPC" if over_grpc else "REST"
        label = f"{'gRPC' if over_grpc else 'REST'} {host}:{port}"
        request_path = image or env.get("MODEL_NAME") or implementation or ""
        server = server_named(implementation) if implementation else None
        kind = "MODEL" if server is not None else declared or "MODEL"  # a model server's node is a MODEL
        return plan(REMOTE, kind, request_path, label, transport=transport, host=host, port=port)
    server = server_named(implementation) if implementation else None
    if server is not None:
        if not unit.model_uri:
            raise ManifestError(
                join_path(path, "modelUri"),
                f"node {unit.name!r} uses {server.implementation} but has no modelUri (where the model "
                "is stored)",
            )
        # Seldon's operator passes the model's location as the parameter `model_uri`.
        return replace(
            plan(
                USER_CLASS,
                "MODEL",  # whatever type it names: Seldon's operator makes a model server's node a MODEL
                image or server.implementation,
                f"{server.implementation} {unit.model_uri}",
                model_name=server.dotted,
                execution=execution,
                python=python,
                server=server,
                model_uri=unit.model_uri,
            ),
            parameters={**parameters, "model_uri": unit.model_uri},
        )
    found = builtin_for_image(image) if image and "MODEL_NAME" not in env else None
    if found is not None:
        _builtin_problem(found, unit, path, parameters)
        label = f"{found.cls.__name__} (built-in for {image})"
        return plan(BUILTIN, declared or found.service_type, image, label, builtin=found)
    model_name = env.get("MODEL_NAME")
    if model_name:
        kind = declared or env.get("SERVICE_TYPE", "MODEL").upper()
        if kind == "OUTLIER_DETECTOR":  # Seldon 0.2's detector wrapper served /transform-input
            kind = "TRANSFORMER"
        return plan(
            USER_CLASS,
            kind,
            image or model_name,
            model_name,
            model_name=model_name,
            execution=execution,
            python=python,
        )
    if implementation in PREPACKAGED_SERVERS:
        if not unit.model_uri:
            raise ManifestError(
                join_path(path, "modelUri"),
                f"node {unit.name!r} uses {implementation} but has no modelUri (where the model is stored)",
            )
        problem = (
            f"node {unit.name!r} uses the prepackaged {implementation}, which runs only on a cluster: "
            "serve the model with `seldon microservice` and give the node an endpoint "
            "(service_host, service_port) instead"
        )
    elif implementation is not None:
        known = ", ".join([*builtin_implementations(), *(s.implementation for s in known_servers())])
        raise ManifestError(
            join_path(path, "implementation"),
            f"{implementation!r} is not an implementation this server knows (known: {known})",
        )
    else:
        what = f"image '{image}' is not a built-in image" if image else "has no container"
        problem = (
            f"node '{unit.name}' {what}: give its container env MODEL_NAME (a Python class in the "
            "manifest's directory), an endpoint with service_host and service_port, or a built-in "
            "implementation"
        )
    return plan(
        UNAVAILABLE, declared or "MODEL", image or implementation or "", "not runnable here", problem=problem
    )


def server_named(implementation: str) -> ModelServer | None:
    """The model server a graph's `implementation` names (built in or registered), if any."""
    return next((s for s in known_servers() if s.implementation == implementation), None)


def _setting(
    unit: PredictiveUnit, path: str, predictor: PredictorSpec, base: str, sdep: SeldonDeployment, key: str
) -> tuple[str, str, int] | None:
    """(value, its field path, how general: 0 node, 1 predictor, 2 deployment) of one of our
    node settings: the node's parameter, else the predictor's annotation, else the deployment's."""
    for i, param in reversed(list(enumerate(unit.parameters))):
        if param.name == key:
            return str(param.value), join_path(path, "parameters", i, "value"), 0
    found = _annotation(sdep, predictor, key)
    if found is None:
        return None
    value, where = found
    if where == "annotations":
        return value, join_path(base, where, key), 1
    return value, join_path(where, key), 2


def _execution(
    unit: PredictiveUnit, path: str, predictor: PredictorSpec, base: str, sdep: SeldonDeployment
) -> tuple[str, str | None]:
    """(execution mode or "" for the server's default, interpreter or None) of a node.  An
    interpreter implies `process`, unless a mode set at least as specifically says otherwise."""
    mode = _setting(unit, path, predictor, base, sdep, EXECUTION)
    python = _setting(unit, path, predictor, base, sdep, PYTHON)
    execution = ""
    if mode is not None:
        execution = mode[0].strip().lower()
        if execution not in EXECUTION_MODES:
            raise ManifestError(
                mode[1], f"{EXECUTION}={mode[0]!r} is not one of {', '.join(EXECUTION_MODES)}"
            )
    if python is None:
        return execution, None
    if mode is not None and mode[2] <= python[2] and execution != PROCESS:
        raise ManifestError(
            python[1],
            f"{PYTHON} runs a node in its own process: it needs {EXECUTION}: process, not {execution}",
        )
    if not python[0].strip():
        raise ManifestError(python[1], f"{PYTHON} must name a python interpreter (a virtualenv's bin/python)")
    return PROCESS, python[0].strip()


def _batching(
    unit: PredictiveUnit, path: str, predictor: PredictorSpec, base: str, sdep: SeldonDeployment
) -> tuple[int, float]:
    """(max batch size, max batch time in ms) of a node: its parameter, else the predictor's
    annotation, else the deployment's; ManifestError at the one that is not valid."""
    size = _setting(unit, path, predictor, base, sdep, MAX_BATCH_SIZE)
    time_ms = _setting(unit, path, predictor, base, sdep, MAX_BATCH_TIME_MS)
    size_text = size[0] if size is not None else "1"
    time_text = time_ms[0] if time_ms is not None else "0"
    where = f"seldon.io/{{}} of node {unit.name!r}"
    try:
        check_batching(size_text, 0, where)
    except ValueError as exc:
        raise ManifestError(size[1] if size is not None else path, str(exc)) from None
    try:
        return check_batching(size_text, time_text, where)
    except ValueError as exc:
        raise ManifestError(time_ms[1] if time_ms is not None else path, str(exc)) from None


def _methods(unit: PredictiveUnit, kind: str) -> frozenset[str]:
    if unit.type in (None, "UNKNOWN_TYPE") and unit.methods:
        return frozenset(m.value for m in unit.methods)
    return TYPE_METHODS.get(kind, frozenset())


def plan_predictor(sdep: SeldonDeployment, index: int) -> NodePlan:
    """The plan of predictor `index`'s graph; ManifestError (naming the file and field) if a
    node cannot run here."""
    predictor = sdep.spec.predictors[index]
    base = join_path("spec", "predictors", index)

    def plan(unit: PredictiveUnit, path: str) -> NodePlan:
        node = _plan_unit(unit, path, predictor, base, sdep)
        children = tuple(plan(child, join_path(path, "children", i)) for i, child in enumerate(unit.children))
        return _with_children(node, children)

    try:
        return plan(predictor.graph, join_path(base, "graph"))
    except ManifestError as exc:
        raise exc.located(source=sdep.source, context=sdep.context) from None


def _with_children(node: NodePlan, children: tuple[NodePlan, ...]) -> NodePlan:
    return replace(node, children=children) if children else node


def check_deployment(sdep: SeldonDeployment) -> list[NodePlan]:
    """Everything checked before a deployment is stored or started: the manifest's own rules
    (`spec.validate`) and how every node will run.  Returns each predictor's plan."""
    validate(sdep)
    return [plan_predictor(sdep, i) for i in range(len(sdep.spec.predictors))]


def check_classes(sdep: SeldonDeployment, base_dir: Path | None) -> None:
    """Offline (no user code runs): every MODEL_NAME class, and the class of every model server
    the user registered, can be found in `base_dir` (or among the installed packages)."""
    for i in range(len(sdep.spec.predictors)):
        for node in plan_predictor(sdep, i).walk():
            if node.model_name is None or (node.server is not None and node.server.builtin):
                continue
            problem = find_user_class(node.model_name, [base_dir] if base_dir is not None else None)
            if problem is not None:
                what = (
                    f"server {node.server.implementation} ({node.server.target})"
                    if node.server is not None
                    else f"MODEL_NAME {node.model_name}"
                )
                error = ManifestError(node.path, f"{what}: {problem}")
                raise error.located(source=sdep.source, context=sdep.context)


def server_problem(node: NodePlan) -> str | None:
    """Why a model server node cannot run in this interpreter (its framework is not installed:
    the sentence names the node and the pip command), or None.  A node with an interpreter of
    its own (`seldon.io/python`) is left to that interpreter, which may well have it."""
    if node.server is None or node.python is not None:
        return None
    missing = node.server.missing()
    return f"node {node.name!r}: {missing}" if missing else None


def check_servers_installed(sdep: SeldonDeployment, plans: list[NodePlan]) -> None:
    """Every model server these predictor plans use can run here (ManifestError at the node,
    naming the pip command that installs its framework).  Not part of `check_deployment`:
    rendering for a cluster and `seldon validate` must not need the frameworks."""
    for plan in plans:
        for node in plan.walk():
            problem = server_problem(node)
            if problem is not None:
                error = ManifestError(node.path, problem)
                raise error.located(source=sdep.source, context=sdep.context)


__all__ = [
    "BUILTIN",
    "DEFAULT_TIMEOUT_MS",
    "REMOTE",
    "UNAVAILABLE",
    "USER_CLASS",
    "NodePlan",
    "check_classes",
    "check_deployment",
    "check_servers_installed",
    "plan_predictor",
    "server_named",
    "server_problem",
]
