"""Names fixed by Seldon's SeldonDeployment schema (proto enums, spelled as in manifests)."""

from __future__ import annotations

from enum import StrEnum

GROUP = "machinelearning.seldon.io"
KIND = "SeldonDeployment"
# short version -> full apiVersion, oldest first
API_VERSIONS: dict[str, str] = {v: f"{GROUP}/{v}" for v in ("v1alpha1", "v1alpha2", "v1")}


class UnitType(StrEnum):
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    ROUTER = "ROUTER"
    COMBINER = "COMBINER"
    MODEL = "MODEL"
    TRANSFORMER = "TRANSFORMER"
    OUTPUT_TRANSFORMER = "OUTPUT_TRANSFORMER"


class Implementation(StrEnum):
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


# Run by the engine itself: no container, no endpoint needed.
BUILTIN_IMPLEMENTATIONS: frozenset[Implementation] = frozenset(
    {
        Implementation.SIMPLE_MODEL,
        Implementation.SIMPLE_ROUTER,
        Implementation.RANDOM_ABTEST,
        Implementation.AVERAGE_COMBINER,
    }
)

# Need a `modelUri`; the container comes from the server's image, not from the manifest.
PREPACKAGED_SERVERS: frozenset[Implementation] = frozenset(
    set(Implementation) - BUILTIN_IMPLEMENTATIONS - {Implementation.UNKNOWN_IMPLEMENTATION}
)
