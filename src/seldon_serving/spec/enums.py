"""Names fixed by Seldon's SeldonDeployment schema (proto enums, spelled as in manifests)."""

from __future__ import annotations

from enum import StrEnum

GROUP = "machinelearning.seldon.io"
KIND = "SeldonDeployment"
# short version -> full apiVersion, oldest first
API_VERSIONS: dict[str, str] = {v: f"{GROUP}/{v}" for v in ("v1alpha1", "v1alpha2", "v1alpha3", "v1")}


class UnitType(StrEnum):
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    ROUTER = "ROUTER"
    COMBINER = "COMBINER"
    MODEL = "MODEL"
    TRANSFORMER = "TRANSFORMER"
    OUTPUT_TRANSFORMER = "OUTPUT_TRANSFORMER"


class Implementation(StrEnum):
    """The implementation names Seldon's schema defined; `add_implementation` allows more."""

    UNKNOWN_IMPLEMENTATION = "UNKNOWN_IMPLEMENTATION"
    SIMPLE_MODEL = "SIMPLE_MODEL"
    SIMPLE_ROUTER = "SIMPLE_ROUTER"
    RANDOM_ABTEST = "RANDOM_ABTEST"
    AVERAGE_COMBINER = "AVERAGE_COMBINER"
    # prepackaged model servers (Seldon 0.4+ / v1): the operator supplies the container
    SKLEARN_SERVER = "SKLEARN_SERVER"
    XGBOOST_SERVER = "XGBOOST_SERVER"
    TENSORFLOW_SERVER = "TENSORFLOW_SERVER"
    MLFLOW_SERVER = "MLFLOW_SERVER"
    TRITON_SERVER = "TRITON_SERVER"
    HUGGINGFACE_SERVER = "HUGGINGFACE_SERVER"
    TEMPO_SERVER = "TEMPO_SERVER"


class Method(StrEnum):
    TRANSFORM_INPUT = "TRANSFORM_INPUT"
    TRANSFORM_OUTPUT = "TRANSFORM_OUTPUT"
    ROUTE = "ROUTE"
    AGGREGATE = "AGGREGATE"
    SEND_FEEDBACK = "SEND_FEEDBACK"


class EndpointType(StrEnum):
    REST = "REST"
    GRPC = "GRPC"


class ParameterType(StrEnum):
    INT = "INT"
    FLOAT = "FLOAT"
    DOUBLE = "DOUBLE"
    STRING = "STRING"
    BOOL = "BOOL"


class DeploymentState(StrEnum):
    CREATING = "Creating"
    AVAILABLE = "Available"
    FAILED = "Failed"
    NOT_READY = "NotReady"  # serving, but a remote node does not answer (Seldon's graph-ready check)


# Seldon's prepackaged model servers: they need a `modelUri` (the server's image supplies
# the container).
PREPACKAGED_SERVERS: frozenset[str] = frozenset(
    {
        Implementation.SKLEARN_SERVER,
        Implementation.XGBOOST_SERVER,
        Implementation.TENSORFLOW_SERVER,
        Implementation.MLFLOW_SERVER,
        Implementation.TRITON_SERVER,
        Implementation.HUGGINGFACE_SERVER,
        Implementation.TEMPO_SERVER,
    }
)

# The names a manifest's `implementation` may take: Seldon's, plus those added by the
# built-in components' registry and by model servers a user registers (as Seldon's
# predictor_servers ConfigMap did).  What runs each is decided when a graph is planned.
_IMPLEMENTATIONS: set[str] = {i.value for i in Implementation}

# Implementations that are components run by the engine itself (Seldon's in-engine units);
# every other known name is a model server: Seldon's prepackaged ones, and those a server
# registry adds (Seldon's predictor_servers ConfigMap).  A model server's node is a MODEL, and
# a container named like it may leave out `image` (it only sets the server's resources or env).
_COMPONENTS: set[str] = {
    Implementation.UNKNOWN_IMPLEMENTATION,
    Implementation.SIMPLE_MODEL,
    Implementation.SIMPLE_ROUTER,
    Implementation.RANDOM_ABTEST,
    Implementation.AVERAGE_COMBINER,
}


def add_implementation(name: str, *, component: bool = False) -> None:
    """Let manifests name `name` as a node's implementation: a model server, or with
    `component=True` a component that runs in the engine (a built-in router, combiner...)."""
    _IMPLEMENTATIONS.add(name)
    if component:
        _COMPONENTS.add(name)


def is_model_server(implementation: str | None) -> bool:
    """Whether `implementation` names a model server (built in, prepackaged or registered)."""
    return (
        implementation is not None
        and implementation in _IMPLEMENTATIONS
        and implementation not in _COMPONENTS
    )


def known_implementations() -> list[str]:
    """Every implementation name a manifest may use, Seldon's first."""
    seldon = [i.value for i in Implementation]
    return seldon + sorted(_IMPLEMENTATIONS.difference(seldon))
