"""SeldonDeployment manifests: typed models, loading, validation, version conversion,
the seed's prototypes and the CRD schema. Depends on nothing else in seldon_serving."""

from __future__ import annotations

from seldon_serving.spec.convert import convert
from seldon_serving.spec.enums import (
    API_VERSIONS,
    GROUP,
    KIND,
    PREPACKAGED_SERVERS,
    DeploymentState,
    EndpointType,
    Implementation,
    Method,
    ParameterType,
    UnitType,
)
from seldon_serving.spec.errors import ManifestError
from seldon_serving.spec.graph import (
    container_for,
    find_container,
    has_implementation,
    iter_containers,
    iter_units,
    unit_image,
)
from seldon_serving.spec.loading import LoadResult, load_documents, parse_deployment
from seldon_serving.spec.models import (
    Container,
    DeploymentSpec,
    DeploymentStatus,
    Endpoint,
    EnvVar,
    Logger,
    ObjectMeta,
    Parameter,
    PodSpec,
    PodTemplate,
    PredictiveUnit,
    PredictorSpec,
    PredictorStatus,
    SeldonDeployment,
    SeldonPodSpec,
)
from seldon_serving.spec.params import parse_bool, parse_value, typed_parameters
from seldon_serving.spec.prototypes import PROTOTYPES, generate, seldon_version_to_api_version
from seldon_serving.spec.schema import crd_schema
from seldon_serving.spec.validation import deployment_name, find_problems, validate

__all__ = [
    "API_VERSIONS",
    "GROUP",
    "KIND",
    "PREPACKAGED_SERVERS",
    "PROTOTYPES",
    "Container",
    "DeploymentSpec",
    "DeploymentState",
    "DeploymentStatus",
    "Endpoint",
    "EndpointType",
    "EnvVar",
    "Implementation",
    "LoadResult",
    "Logger",
    "ManifestError",
    "Method",
    "ObjectMeta",
    "Parameter",
    "ParameterType",
    "PodSpec",
    "PodTemplate",
    "PredictiveUnit",
    "PredictorSpec",
    "PredictorStatus",
    "SeldonDeployment",
    "SeldonPodSpec",
    "UnitType",
    "container_for",
    "convert",
    "crd_schema",
    "deployment_name",
    "find_container",
    "find_problems",
    "generate",
    "has_implementation",
    "iter_containers",
    "iter_units",
    "load_documents",
    "parse_bool",
    "parse_deployment",
    "parse_value",
    "seldon_version_to_api_version",
    "typed_parameters",
    "unit_image",
    "validate",
]
