"""Typed SeldonDeployment (v1alpha1, v1alpha2 and v1 share one shape; `validate` checks version rules).

Every model keeps unknown keys (`extra="allow"`) and `to_dict()` dumps only what was set, so a
manifest read and written back comes out as it went in: that is what `get -o yaml` echoes.
Python attribute names are snake_case; the manifest's own spelling (`componentSpecs`,
`service_host`, `modelUri`) is the alias, which is also what error paths use.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr
from pydantic_core import PydanticCustomError

from seldon_serving.spec.enums import (
    DeploymentState,
    EndpointType,
    Method,
    ParameterType,
    UnitType,
    known_implementations,
)


def _stringify(value: Any) -> Any:
    """Scalars become strings the way a manifest author means them (YAML `value: 0.5` is "0.5")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value  # anything else is left for pydantic to refuse with a type error


def _known_implementation(value: str) -> str:
    known = known_implementations()
    if value not in known:
        # Worded like an enum error, so it reads like every other "not one of" in a manifest.
        expected = ", ".join(f"'{name}'" for name in known[:-1]) + f" or '{known[-1]}'"
        raise PydanticCustomError("enum", "Input should be {expected}", {"expected": expected})
    return value


def _none_to_list(value: Any) -> Any:
    # `children:` with nothing after it is YAML null; treat it as the empty list it means.
    return [] if value is None else value


Str = Annotated[str, BeforeValidator(_stringify)]
StrMap = dict[str, Str]
Loose = dict[str, Any]


_T = TypeVar("_T")
# A list field where YAML null means empty.
Items = Annotated[list[_T], BeforeValidator(_none_to_list)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())

    def to_dict(self) -> dict[str, Any]:
        """The manifest form: aliases as keys, enums as strings, only the fields that were set."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


# --- pods: loosely typed except what the engine reads ------------------------------------


class EnvVar(_Model):
    name: str
    value: Str | None = None


class Container(_Model):
    name: str
    image: str | None = None
    env: Items[EnvVar] = Field(default_factory=list)

    def env_value(self, name: str) -> str | None:
        return next((e.value for e in self.env if e.name == name), None)


class PodSpec(_Model):
    containers: Items[Container] = Field(default_factory=list)


class PodTemplate(_Model):
    """A Kubernetes PodTemplateSpec: v1alpha1's `componentSpec`."""

    metadata: Loose | None = None
    spec: PodSpec | None = None

    @property
    def containers(self) -> list[Container]:
        return self.spec.containers if self.spec is not None else []


class SeldonPodSpec(PodTemplate):
    """One item of v1alpha2/v1 `componentSpecs`: a pod template that becomes its own Deployment."""

    hpa_spec: Loose | None = Field(None, alias="hpaSpec")
    replicas: int | None = Field(None, ge=0)
    keda_spec: Loose | None = Field(None, alias="kedaSpec")
    pdb_spec: Loose | None = Field(None, alias="pdbSpec")


# --- the inference graph --------------------------------------------------------------------


class Endpoint(_Model):
    service_host: str | None = None
    service_port: int | None = Field(None, ge=0, le=65535)
    type: EndpointType | None = None
    http_port: int | None = Field(None, alias="httpPort", ge=0, le=65535)
    grpc_port: int | None = Field(None, alias="grpcPort", ge=0, le=65535)


class Parameter(_Model):
    name: str
    value: Str
    type: ParameterType


class Logger(_Model):
    url: str | None = None
    mode: Literal["all", "request", "response"] | None = None


class PredictiveUnit(_Model):
    name: str
    type: UnitType | None = None
    implementation: Annotated[str, AfterValidator(_known_implementation)] | None = None
    methods: Items[Method] = Field(default_factory=list)
    endpoint: Endpoint | None = None
    parameters: Items[Parameter] = Field(default_factory=list)
    children: Items[PredictiveUnit] = Field(default_factory=list)
    model_uri: str | None = Field(None, alias="modelUri")
    service_account_name: str | None = Field(None, alias="serviceAccountName")
    env_secret_ref_name: str | None = Field(None, alias="envSecretRefName")
    storage_initializer_image: str | None = Field(None, alias="storageInitializerImage")
    logger: Logger | None = None


# --- predictors and the deployment ------------------------------------------------------------


class PredictorSpec(_Model):
    name: str
    graph: PredictiveUnit
    component_spec: PodTemplate | None = Field(None, alias="componentSpec")  # v1alpha1 only
    component_specs: Items[SeldonPodSpec] = Field(default_factory=list, alias="componentSpecs")
    replicas: int | None = Field(None, ge=0)
    traffic: int | None = None
    shadow: bool | None = None
    labels: StrMap | None = None
    annotations: StrMap | None = None
    svc_orch_spec: Loose | None = Field(None, alias="svcOrchSpec")
    engine_resources: Loose | None = Field(None, alias="engineResources")
    explainer: Loose | None = None
    ssl: Loose | None = None
    progress_deadline_seconds: int | None = Field(None, alias="progressDeadlineSeconds")

    @property
    def pod_templates(self) -> list[PodTemplate]:
        """Every pod template, whichever API version spelled them."""
        singles: list[PodTemplate] = [self.component_spec] if self.component_spec is not None else []
        return [*singles, *self.component_specs]


class DeploymentSpec(_Model):
    name: str | None = None
    predictors: Items[PredictorSpec] = Field(min_length=1)
    oauth_key: str | None = None
    oauth_secret: str | None = None
    annotations: StrMap | None = None
    # v1 additions
    protocol: Literal["seldon", "tensorflow", "kfserving", "v2"] | None = None
    transport: Literal["rest", "grpc"] | None = None
    replicas: int | None = Field(None, ge=0)
    server_type: Literal["rpc", "kafka"] | None = Field(None, alias="serverType")


class ObjectMeta(_Model):
    name: str | None = None
    namespace: str | None = None
    labels: StrMap | None = None
    annotations: StrMap | None = None


class PredictorStatus(_Model):
    name: str
    replicas: int | None = None
    replicas_available: int | None = Field(None, alias="replicasAvailable")
    status: str | None = None
    description: str | None = None


class DeploymentStatus(_Model):
    state: DeploymentState | None = None
    description: str | None = None
    predictor_status: Items[PredictorStatus] = Field(default_factory=list, alias="predictorStatus")


class SeldonDeployment(_Model):
    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: DeploymentSpec
    status: DeploymentStatus | None = None

    # Where the manifest came from, so later validation errors can name the file and item.
    _source: str | None = PrivateAttr(default=None)
    _context: str | None = PrivateAttr(default=None)

    @property
    def source(self) -> str | None:
        """The file this deployment was read from, if any."""
        return self._source

    @property
    def context(self) -> str | None:
        """Which part of that file ("document 2", "SeldonDeployment mymab"), when it holds several."""
        return self._context

    def locate(self, *, source: str | None, context: str | None = None) -> None:
        self._source, self._context = source, context

    @property
    def version(self) -> str:
        """The short API version ("v1alpha1" ... "v1"), or the raw apiVersion if foreign."""
        group, _, version = self.api_version.rpartition("/")
        return version if group == "machinelearning.seldon.io" else self.api_version
