"""What a SeldonDeployment becomes on a cluster: pure functions from a manifest to the
Kubernetes objects Seldon's operator made for it (SELDON-REFERENCE 5.6), so `seldon k8s render`
prints exactly what the operator applies.

Per predictor: one Deployment per pod template (`componentSpecs`; v1alpha1's single
`componentSpec`), its graph containers given Seldon's environment, ports (HTTP from 9000, gRPC
from 9500, metrics from 6000, one each per distinct container), probes and a preStop hook; the
engine (`seldon engine`, Seldon's service orchestrator) in the first pod, or in a Deployment of
its own with the annotation `seldon.io/engine-separate-pod`; a Service per graph container; a
Service per predictor; HorizontalPodAutoscalers from `hpaSpec`.  Per deployment: one Service
whose `getambassador.io/config` annotation maps `/seldon/<namespace>/<name>/` (and, in a
single-namespace install, `/seldon/<name>/`) and the gRPC header `seldon: <name>` to the
engines, weighted by `traffic`, with shadows mirrored.

The seed's images (`seldonio/mock_classifier`, ...) become our runtime image running the
built-in component, as they do locally; every other image runs as given.  A model server node
(SKLEARN_SERVER, ..., or one the user registered) becomes a container of the runtime image
running `seldon microservice --server ... --model-uri ...`: the container named like the node if
there is one (its env, resources and mounts kept: why Seldon allowed one without an image), else
one added to the first pod template, as Seldon's operator adds it.  Its model is read from a
`pvc://` claim mounted read-only under `/mnt/pvc`, or downloaded at start from `s3://` / `gs://`
into an emptyDir at `/mnt/models` (credentials from the container's env, or the node's
`envSecretRefName`).  Output is deterministic (no timestamps, no random parts), so applying it
again changes nothing.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from seldon_serving import __version__
from seldon_serving.components.builtin.registry import (
    BUILTINS,
    builtin_for_implementation,
    image_repository,
    image_tag,
)
from seldon_serving.components.servers import ModelServer
from seldon_serving.deploy.k8s import names
from seldon_serving.engine.plan import RESERVED_PREFIX, check_deployment, server_named
from seldon_serving.spec import ManifestError, SeldonDeployment, deployment_name, parse_deployment
from seldon_serving.spec.enums import PREPACKAGED_SERVERS
from seldon_serving.spec.graph import iter_units
from seldon_serving.spec.models import PredictiveUnit, PredictorSpec

RUNTIME_IMAGE = f"seldonio-serving/seldon-serving:{__version__}"  # what the Dockerfile builds
ENGINE_CONTAINER = "seldon-container-engine"
ENGINE_HTTP_PORT = 8000
ENGINE_GRPC_PORT = 5001
HTTP_BASE, GRPC_BASE, METRICS_BASE = 9000, 9500, 6000
DEFAULT_TIMEOUT_MS = 3000  # Seldon's Ambassador mapping timeout
SEPARATE_ENGINE = "seldon.io/engine-separate-pod"
PODINFO = "podinfo"  # the downward-API volume Seldon's wrapper reads its pod's annotations from
GROUP_VERSION = "machinelearning.seldon.io"
PVC_ROOT = "/mnt/pvc"  # claims a model server reads (pvc://<claim>/<path>) are mounted under it
MODEL_CACHE = "/mnt/models"  # where a model server downloads an s3:// or gs:// model (Seldon's path)
MODEL_CACHE_VOLUME = "seldon-model-cache"
STARTUP_SECONDS = 600  # a model server may download and load its model for this long before it is live


@dataclass(frozen=True, slots=True)
class BuiltinImage:
    """What runs in place of one of the seed's images: a class of the runtime image."""

    class_path: str  # e.g. seldon_serving.components.builtin.MockClassifier
    service_type: str  # MODEL, ROUTER, TRANSFORMER


def default_builtin_images() -> dict[str, BuiltinImage]:
    """Image repository -> built-in, from the built-in components' registry (what the install's
    ConfigMap holds unless the operator of the cluster changes it)."""
    return {
        image: BuiltinImage(f"seldon_serving.components.builtin.{b.cls.__name__}", b.service_type)
        for b in BUILTINS
        for image in b.images
    }


@dataclass(frozen=True)
class RenderOptions:
    runtime_image: str = RUNTIME_IMAGE  # runs engines and built-ins
    install_name: str = "seldon"  # the install's prefix: its Redis is the Service <name>-redis
    install_namespace: str = "default"  # where the install (operator, Redis) runs
    state_store: str | None = None  # default: that Redis, shared by every engine replica
    engine_user: int = 8888
    engine_service_account: str | None = None  # of the engines' pods (the seed's engineServiceAccount)
    single_namespace: bool = True  # also the un-namespaced Ambassador mappings (/seldon/<name>/)
    grpc_max_message_size: int = 4 * 1024 * 1024
    builtin_images: Mapping[str, BuiltinImage] = field(default_factory=default_builtin_images)
    owner_uid: str | None = None  # the SeldonDeployment's uid: owner references (GC) when known
    # The install has the OAuth front end: the operator also stores each deployment for it.
    front_end: bool = False

    def store(self) -> str:
        """The state store engines and stateful components share: the install's Redis."""
        return self.state_store or f"redis://{self.install_name}-redis.{self.install_namespace}:6379/0"


def render(
    sdep: SeldonDeployment, namespace: str, options: RenderOptions | None = None
) -> list[dict[str, Any]]:
    """Every object the operator applies for `sdep` in `namespace`, in a stable order."""
    options = options or RenderOptions()
    name = deployment_name(sdep)
    objects: list[dict[str, Any]] = []
    serving: list[tuple[PredictorSpec, str]] = []
    shadows: list[tuple[str, str]] = []  # (predictor, its Service)
    for index, predictor in enumerate(sdep.spec.predictors):
        rendered = _Predictor(sdep, name, namespace, index, predictor, options)
        objects += rendered.objects()
        service = names.predictor_service_name(name, predictor.name)
        if predictor.shadow:
            shadows.append((predictor.name, service))
        else:
            serving.append((predictor, service))
    objects.append(_deployment_service(sdep, name, namespace, serving, shadows, options))
    return [_owned(obj, sdep, options) for obj in objects]


def render_manifest(
    manifest: dict[str, Any],
    namespace: str | None,
    options: RenderOptions | None = None,
    *,
    source: str | None = None,
) -> list[dict[str, Any]]:
    """Check one SeldonDeployment as `seldon validate` does (ManifestError: the same sentence),
    then render it in its own namespace, else `namespace`, else "default"."""
    sdep = parse_deployment(manifest, source=source)
    check_deployment(sdep)
    own = (manifest.get("metadata") or {}).get("namespace")
    return render(sdep, own or namespace or "default", options)


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(objects: list[dict[str, Any]]) -> str:
    """A YAML stream for `kubectl apply -f -` (no anchors: every object stands alone)."""
    return yaml.dump_all(objects, Dumper=_NoAliases, sort_keys=False, default_flow_style=False)


# --- one predictor ---------------------------------------------------------------------------


@dataclass
class _Port:
    http: int
    grpc: int
    metrics: int
    grpc_endpoint: bool

    @property
    def served(self) -> int:
        return self.grpc if self.grpc_endpoint else self.http


class _Predictor:
    def __init__(
        self,
        sdep: SeldonDeployment,
        name: str,
        namespace: str,
        index: int,
        predictor: PredictorSpec,
        options: RenderOptions,
    ) -> None:
        self.sdep, self.name, self.namespace = sdep, name, namespace
        self.index, self.predictor, self.options = index, predictor, options
        self.units = {unit.name: (path, unit) for path, unit in iter_units(predictor.graph)}
        annotations = {**(sdep.spec.annotations or {}), **(predictor.annotations or {})}
        self.annotations = {k: str(v) for k, v in annotations.items()}
        self.separate_engine = self.annotations.get(SEPARATE_ENGINE, "").lower() == "true"
        self.templates = [t.to_dict() for t in predictor.pod_templates]
        self.servers = self._model_servers()
        added = self._add_server_containers()
        self.ports = self._assign_ports(added)

    def _model_servers(self) -> dict[str, tuple[PredictiveUnit, ModelServer]]:
        """The nodes served by one of our model servers in a container of their own."""
        found = {}
        for path, unit in self.units.values():
            server = server_named(unit.implementation) if unit.implementation else None
            if server is not None and not _remote(unit):
                found[unit.name] = (unit, server)
            elif unit.implementation in PREPACKAGED_SERVERS and not _remote(unit):
                raise ManifestError(
                    f"spec.predictors[{self.index}].{path}.implementation",
                    f"{unit.implementation} does not run on Kubernetes here yet: serve the model with "
                    "`seldon microservice` in a container of its own",
                ).located(source=self.sdep.source, context=self.sdep.context)
        return found

    def _add_server_containers(self) -> list[str]:
        """Seldon's operator adds a container for a model server node that has none: to the first
        pod template (made if there is none).  Returns the names added."""
        present = {
            c.get("name") for t in self.templates for c in (t.get("spec") or {}).get("containers") or []
        }
        added = [name for name in self.servers if name not in present]
        if added and not self.templates:
            self.templates.append({"spec": {"containers": []}})
        for name in added:
            self.templates[0].setdefault("spec", {}).setdefault("containers", []).append({"name": name})
        return added

    # Seldon's rule: one port (set) per distinct graph container, in the order they appear, the
    # containers it added for model servers last.
    def _assign_ports(self, added: list[str]) -> dict[str, _Port]:
        ports: dict[str, _Port] = {}
        names_in_order = [
            c.get("name", "")
            for template in self.templates
            for c in (template.get("spec") or {}).get("containers") or []
            if c.get("name") not in added
        ]
        for container_name in [*names_in_order, *added]:
            unit = self._unit(container_name)
            if unit is None or unit.name in ports:
                continue
            k = len(ports)
            grpc = unit.endpoint is not None and unit.endpoint.type == "GRPC"
            ports[unit.name] = _Port(HTTP_BASE + k, GRPC_BASE + k, METRICS_BASE + k, grpc)
        return ports

    def _unit(self, container_name: str) -> PredictiveUnit | None:
        """The graph node a container serves (built-in implementations run in the engine)."""
        found = self.units.get(container_name)
        if found is None:
            return None
        unit = found[1]
        engine_side = unit.implementation is not None and builtin_for_implementation(unit.implementation)
        return None if engine_side else unit

    # --- names and labels ---------------------------------------------------------------------

    @property
    def predictor_label(self) -> str:
        return names.label_value(self.predictor.name)

    def labels(self, deployment: str) -> dict[str, str]:
        return {
            "app": deployment,
            "seldon-deployment-id": names.label_value(self.name),
            "seldon-type": "deployment",
            **{k: str(v) for k, v in (self.predictor.labels or {}).items()},
        }

    def engine_labels(self) -> dict[str, str]:
        return {"seldon-app": names.label_value(self.name), "seldon-predictor": self.predictor_label}

    # --- the objects --------------------------------------------------------------------------

    def objects(self) -> list[dict[str, Any]]:
        deployments: list[dict[str, Any]] = []
        services: list[dict[str, Any]] = []
        hpas: list[dict[str, Any]] = []
        for j, template in enumerate(self.templates):
            with_engine = j == 0 and not self.separate_engine
            deployment = self._deployment(template, j, with_engine)
            deployments.append(deployment)
            hpa = self._hpa(j, deployment["metadata"]["name"])
            if hpa is not None:
                hpas.append(hpa)
        if self.separate_engine or not self.templates:
            deployments.append(self._engine_deployment())
        for container in sorted(self.ports):
            services.append(self._container_service(container))
        services.append(self._predictor_service())
        return [*deployments, *services, *hpas]

    def _replicas(self, j: int) -> int:
        specs = self.predictor.component_specs
        own = specs[j].replicas if j < len(specs) else None
        if own is not None:
            return own
        if self.predictor.replicas is not None:
            return self.predictor.replicas
        return self.sdep.spec.replicas if self.sdep.spec.replicas is not None else 1

    def _deployment(self, template: dict[str, Any], j: int, with_engine: bool) -> dict[str, Any]:
        pod = copy.deepcopy(template.get("spec") or {})
        containers = [self._container(c) for c in pod.get("containers") or []]
        identity = [(c.get("name", ""), c.get("image", "")) for c in template["spec"].get("containers") or []]
        name = names.deployment_name(self.name, self.predictor.name, identity)
        pod_labels = {**((template.get("metadata") or {}).get("labels") or {}), **self.labels(name)}
        for container in containers:
            if container["name"] in self.ports:
                service = names.container_service_name(self.name, self.predictor.name, container["name"])
                pod_labels[f"seldon-app-{container['name']}"] = service
        annotations = {**self.annotations, **((template.get("metadata") or {}).get("annotations") or {})}
        if with_engine:
            containers.append(self._engine_container(in_pod=j))
            if self.options.engine_service_account:
                pod.setdefault("serviceAccountName", self.options.engine_service_account)
            pod_labels.update(self.engine_labels())
            annotations.update(_PROMETHEUS)
        pod["containers"] = containers
        pod["volumes"] = [_volume(v) for v in pod.get("volumes") or []] + [_PODINFO_VOLUME]
        pod["volumes"] += self._server_volumes(containers, pod)
        for container in containers:
            served = self.servers.get(container.get("name", ""))
            if served is not None and served[0].service_account_name:
                # Seldon: the pod runs as the node's account (its cloud storage rights, IAM roles).
                pod["serviceAccountName"] = served[0].service_account_name
        pod.setdefault("terminationGracePeriodSeconds", 20)
        # With an autoscaler the replicas are its to set: an apply must not reset them.
        specs = self.predictor.component_specs
        scaled = j < len(specs) and bool(specs[j].hpa_spec)
        replicas = None if scaled else self._replicas(j)
        return self._deployment_object(name, replicas, pod, pod_labels, annotations)

    def _engine_deployment(self) -> dict[str, Any]:
        name = names.engine_deployment_name(self.name, self.predictor.name)
        pod: dict[str, Any] = {
            "containers": [self._engine_container(in_pod=None)],
            "terminationGracePeriodSeconds": 20,
            "volumes": [_PODINFO_VOLUME],
        }
        if self.options.engine_service_account:
            pod["serviceAccountName"] = self.options.engine_service_account
        labels = {**self.labels(name), **self.engine_labels()}
        annotations = {**self.annotations, **_PROMETHEUS}
        replicas = self.predictor.replicas if self.predictor.replicas is not None else 1
        return self._deployment_object(name, replicas, pod, labels, annotations)

    def _deployment_object(
        self,
        name: str,
        replicas: int | None,
        pod: dict[str, Any],
        labels: dict[str, str],
        annotations: dict[str, str],
    ) -> dict[str, Any]:
        selector = {"app": name, "seldon-deployment-id": names.label_value(self.name)}
        spec: dict[str, Any] = {"replicas": replicas} if replicas is not None else {}
        spec.update(
            {
                "selector": {"matchLabels": selector},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
                "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod},
            }
        )
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": self.namespace, "labels": self.labels(name)},
            "spec": spec,
        }

    # --- containers ---------------------------------------------------------------------------

    def _builtin_for(self, image: str) -> BuiltinImage | None:
        """The built-in behind `image`: an entry for its tag (`repo:0.2`) before its repository's."""
        images, repository, tag = self.options.builtin_images, image_repository(image), image_tag(image)
        return (images.get(f"{repository}:{tag}") if tag else None) or images.get(repository)

    def _container(self, given: dict[str, Any]) -> dict[str, Any]:
        container = copy.deepcopy(given)
        unit = self._unit(container.get("name", ""))
        if unit is None:
            return container  # a sidecar: left as it is
        port = self.ports[unit.name]
        image = container.get("image") or ""
        env = {e["name"]: e for e in container.get("env") or [] if "name" in e}
        builtin = self._builtin_for(image) if image else None
        served = self.servers.get(unit.name)
        if served is not None:
            self._server_container(container, *served)
            image = container["image"]
        elif builtin is not None and "MODEL_NAME" not in env:
            container["image"] = self.options.runtime_image
            kind = str(unit.type or builtin.service_type)
            container["command"] = ["seldon", "microservice", builtin.class_path, "--service-type", kind]
            container.pop("args", None)
        parameters = [
            {"name": p.name, "value": p.value, "type": p.type}
            for p in unit.parameters
            # Our own settings (seldon.io/execution, ...) are not the server class's parameters.
            if served is None or not p.name.startswith(RESERVED_PREFIX)
        ]
        wanted = {
            "PREDICTIVE_UNIT_SERVICE_PORT": str(port.served),
            "PREDICTIVE_UNIT_HTTP_SERVICE_PORT": str(port.http),
            "PREDICTIVE_UNIT_GRPC_SERVICE_PORT": str(port.grpc),
            "PREDICTIVE_UNIT_METRICS_SERVICE_PORT": str(port.metrics),
            "PREDICTIVE_UNIT_METRICS_ENDPOINT": "/prometheus",
            "PREDICTIVE_UNIT_PARAMETERS": json.dumps(parameters, separators=(",", ":")),
            "PREDICTIVE_UNIT_ID": unit.name,
            "PREDICTIVE_UNIT_IMAGE": image,
            "PREDICTOR_ID": self.predictor.name,
            "PREDICTOR_LABELS": json.dumps(
                self.predictor.labels or {}, sort_keys=True, separators=(",", ":")
            ),
            "SELDON_DEPLOYMENT_ID": self.name,
            "DEPLOYMENT_NAMESPACE": self.namespace,
            "SELDON_STATE_STORE": self.options.store(),
        }
        # Seldon's rule: the operator's values only where the user set none.
        env_list = list(container.get("env") or [])
        env_list += [{"name": k, "value": v} for k, v in wanted.items() if k not in env]
        container["env"] = env_list
        if not container.get("ports"):
            container["ports"] = [
                {"name": "http", "containerPort": port.http, "protocol": "TCP"},
                {"name": "grpc", "containerPort": port.grpc, "protocol": "TCP"},
                {"name": "metrics", "containerPort": port.metrics, "protocol": "TCP"},
            ]
        probe = {"tcpSocket": {"port": port.served}, "initialDelaySeconds": 5, "periodSeconds": 5}
        container.setdefault("readinessProbe", probe)
        container.setdefault("livenessProbe", {**probe, "initialDelaySeconds": 15})
        container.setdefault("lifecycle", {"preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 5"]}}})
        container["volumeMounts"] = [*(container.get("volumeMounts") or []), _PODINFO_MOUNT]
        return container

    def _server_container(self, container: dict[str, Any], unit: PredictiveUnit, server: ModelServer) -> None:
        """A model server node's container: the runtime image (unless the container names one)
        running `seldon microservice --server`, with what its modelUri needs mounted."""
        uri = unit.model_uri or ""
        container["image"] = container.get("image") or self.options.runtime_image
        # A registered server is not known in the pod: it is named with its class.
        named = server.short if server.builtin else f"{server.implementation}={server.target}"
        command = ["seldon", "microservice", "--server", named, "--model-uri", uri]
        command += ["--service-type", "MODEL"]  # Seldon: a model server's node is a MODEL
        scheme = uri.partition("://")[0].lower() if "://" in uri else ""
        mounts = list(container.get("volumeMounts") or [])
        if scheme == "pvc":
            claim = uri.partition("://")[2].partition("/")[0]
            command += ["--pvc-root", PVC_ROOT]
            mount = {"name": _pvc_volume_name(claim), "mountPath": f"{PVC_ROOT}/{claim}", "readOnly": True}
            if not any(m.get("mountPath") == mount["mountPath"] for m in mounts):
                mounts.append(mount)
        elif scheme in ("s3", "gs"):
            command += ["--model-cache", MODEL_CACHE]
            if not any(m.get("mountPath") == MODEL_CACHE for m in mounts):
                mounts.append({"name": MODEL_CACHE_VOLUME, "mountPath": MODEL_CACHE})
        container["volumeMounts"] = mounts
        if not container.get("command") and not container.get("args"):  # the user's own command wins
            container["command"] = command
        if unit.env_secret_ref_name:  # the credentials of its storage, as Seldon's initializer got them
            ref = {"secretRef": {"name": unit.env_secret_ref_name}}
            container["envFrom"] = [*(container.get("envFrom") or []), ref]
        port = self.ports[unit.name]
        # Downloading and loading a model may take a while: live only once it has started.
        container.setdefault(
            "startupProbe",
            {
                "tcpSocket": {"port": port.served},
                "periodSeconds": 5,
                "failureThreshold": STARTUP_SECONDS // 5,
            },
        )

    def _server_volumes(self, containers: list[dict[str, Any]], pod: dict[str, Any]) -> list[dict[str, Any]]:
        """The volumes the model server containers of one pod mount: each claim (read-only) and
        the download cache, unless the pod has them already."""
        have = {v.get("name") for v in pod.get("volumes") or []}
        wanted: dict[str, dict[str, Any]] = {}
        for container in containers:
            served = self.servers.get(container.get("name", ""))
            if served is None:
                continue
            unit, _ = served
            uri = unit.model_uri or ""
            scheme, _, rest = uri.partition("://")
            if scheme.lower() == "pvc":
                claim = rest.partition("/")[0]
                source = {"claimName": claim, "readOnly": True}
                wanted[_pvc_volume_name(claim)] = {"persistentVolumeClaim": source}
            elif scheme.lower() in ("s3", "gs"):
                wanted[MODEL_CACHE_VOLUME] = {"emptyDir": {}}
        return [{"name": name, **source} for name, source in sorted(wanted.items()) if name not in have]

    def _engine_container(self, in_pod: int | None) -> dict[str, Any]:
        predictor = base64.b64encode(json.dumps(self._engine_predictor(in_pod), sort_keys=True).encode())
        env = [
            {"name": "ENGINE_PREDICTOR", "value": predictor.decode()},
            {"name": "DEPLOYMENT_NAME", "value": self.name},
            {"name": "DEPLOYMENT_NAMESPACE", "value": self.namespace},
            {"name": "ENGINE_SERVER_PORT", "value": str(ENGINE_HTTP_PORT)},
            {"name": "ENGINE_SERVER_GRPC_PORT", "value": str(ENGINE_GRPC_PORT)},
            {"name": "SELDON_STATE_STORE", "value": self.options.store()},
            {"name": "SELDON_MAX_MESSAGE_SIZE", "value": str(self.options.grpc_max_message_size)},
        ]
        svc_orch = self.predictor.svc_orch_spec or {}
        env += [e for e in svc_orch.get("env") or [] if isinstance(e, dict)]
        pause = "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/pause')"
        container: dict[str, Any] = {
            "name": ENGINE_CONTAINER,
            "image": self.options.runtime_image,
            "command": ["seldon", "engine"],
            "env": env,
            "ports": [
                {"name": "http", "containerPort": ENGINE_HTTP_PORT, "protocol": "TCP"},
                {"name": "grpc", "containerPort": ENGINE_GRPC_PORT, "protocol": "TCP"},
            ],
            "readinessProbe": {
                "httpGet": {"path": "/ready", "port": ENGINE_HTTP_PORT},
                "initialDelaySeconds": 5,
                "periodSeconds": 5,
            },
            "livenessProbe": {
                "httpGet": {"path": "/live", "port": ENGINE_HTTP_PORT},
                "initialDelaySeconds": 10,
                "periodSeconds": 5,
            },
            # Out of rotation first, then a pause for in-flight requests (Seldon's preStop).
            "lifecycle": {
                "preStop": {"exec": {"command": ["/bin/sh", "-c", f'python -c "{pause}"; sleep 10']}}
            },
            "securityContext": {"runAsUser": self.options.engine_user},
            "resources": svc_orch.get("resources") or {"requests": {"cpu": "0.1"}},
            "volumeMounts": [_PODINFO_MOUNT],
        }
        return container

    def _engine_predictor(self, in_pod: int | None) -> dict[str, Any]:
        """The predictor the engine runs: every graph container's node given its endpoint
        (localhost for the engine's own pod, else the container's Service)."""
        local = set()
        if in_pod is not None:
            spec = self.templates[in_pod].get("spec") or {}
            local = {c.get("name") for c in spec.get("containers") or []}
        predictor = self.predictor.to_dict()
        # The engine sees one predictor: the deployment's annotations (read timeouts) go with it.
        if self.annotations:
            predictor["annotations"] = dict(self.annotations)
        for unit in _walk(predictor["graph"]):
            port = self.ports.get(unit.get("name", ""))
            if port is None:
                continue
            if unit.get("name") in local:
                host = "localhost"
            else:
                service = names.container_service_name(self.name, self.predictor.name, unit["name"])
                host = f"{service}.{self.namespace}.svc.cluster.local."
            unit["endpoint"] = {
                "service_host": host,
                "service_port": port.served,
                "type": "GRPC" if port.grpc_endpoint else "REST",
            }
            served = self.servers.get(unit.get("name", ""))
            if served is not None and not served[1].builtin:
                # The engine calls it as any remote MODEL; a registered name means nothing there.
                unit.pop("implementation", None)
                unit["type"] = "MODEL"
        return predictor

    # --- services and autoscalers -------------------------------------------------------------

    def _container_service(self, container: str) -> dict[str, Any]:
        port = self.ports[container]
        service = names.container_service_name(self.name, self.predictor.name, container)
        return _service(
            service,
            self.namespace,
            {f"seldon-app-{container}": service},
            [("http", port.http), ("grpc", port.grpc)],
            {"seldon-deployment-id": names.label_value(self.name)},
        )

    def _predictor_service(self) -> dict[str, Any]:
        return _service(
            names.predictor_service_name(self.name, self.predictor.name),
            self.namespace,
            self.engine_labels(),
            [("http", ENGINE_HTTP_PORT), ("grpc", ENGINE_GRPC_PORT)],
            {"seldon-deployment-id": names.label_value(self.name)},
        )

    def _hpa(self, j: int, deployment: str) -> dict[str, Any] | None:
        specs = self.predictor.component_specs
        hpa = specs[j].hpa_spec if j < len(specs) else None
        if not hpa:
            return None
        spec: dict[str, Any] = {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "maxReplicas": int(hpa.get("maxReplicas", 1)),
        }
        if hpa.get("minReplicas") is not None:
            spec["minReplicas"] = int(hpa["minReplicas"])
        metrics = [_metric_v2(m) for m in hpa.get("metrics") or [] if isinstance(m, dict)]
        if metrics:
            spec["metrics"] = metrics
        return {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": deployment, "namespace": self.namespace, "labels": self.labels(deployment)},
            "spec": spec,
        }


def _remote(unit: PredictiveUnit) -> bool:
    return unit.endpoint is not None and bool(unit.endpoint.service_host) and bool(unit.endpoint.service_port)


def _pvc_volume_name(claim: str) -> str:
    return names.dns_label(f"seldon-pvc-{claim}")


def _walk(unit: dict[str, Any]) -> list[dict[str, Any]]:
    units = [unit]
    for child in unit.get("children") or []:
        units += _walk(child)
    return units


def _metric_v2(metric: dict[str, Any]) -> dict[str, Any]:
    """An autoscaling/v2beta1 metric (what Seldon's hpaSpec held) in autoscaling/v2's form."""
    resource = metric.get("resource")
    if metric.get("type") == "Resource" and isinstance(resource, dict) and "target" not in resource:
        target: dict[str, Any] = {"type": "Utilization"}
        if "targetAverageUtilization" in resource:
            target["averageUtilization"] = resource["targetAverageUtilization"]
        elif "targetAverageValue" in resource:
            target = {"type": "AverageValue", "averageValue": resource["targetAverageValue"]}
        return {"type": "Resource", "resource": {"name": resource.get("name", "cpu"), "target": target}}
    return metric


def _volume(volume: dict[str, Any]) -> dict[str, Any]:
    """A pod volume as Kubernetes takes it: the seed's prototypes wrote the source under
    `volumeSource` (the protobuf field Seldon 0.2's operator read), which is flattened here."""
    if isinstance(volume.get("volumeSource"), dict):
        source = volume["volumeSource"]
        return {**{k: v for k, v in volume.items() if k != "volumeSource"}, **source}
    return volume


_PODINFO_VOLUME = {
    "name": PODINFO,
    "downwardAPI": {"items": [{"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}]},
}
_PODINFO_MOUNT = {"name": PODINFO, "mountPath": "/etc/podinfo", "readOnly": True}
_PROMETHEUS = {
    "prometheus.io/path": "/prometheus",
    "prometheus.io/port": str(ENGINE_HTTP_PORT),
    "prometheus.io/scrape": "true",
}


def _service(
    name: str, namespace: str, selector: dict[str, str], ports: list[tuple[str, int]], labels: dict[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": n, "port": p, "targetPort": p, "protocol": "TCP"} for n, p in ports],
        },
    }


# --- the deployment's Service and its Ambassador mappings ------------------------------------------


def _timeout(annotations: Mapping[str, Any], key: str) -> int:
    value = annotations.get(key)
    try:
        return int(float(value)) if value is not None else DEFAULT_TIMEOUT_MS
    except ValueError:
        return DEFAULT_TIMEOUT_MS


def ambassador_mappings(
    name: str,
    namespace: str,
    serving: list[tuple[str, str, float | None]],
    shadows: list[tuple[str, str]],
    annotations: Mapping[str, Any],
    single_namespace: bool,
) -> list[dict[str, Any]]:
    """The Mappings of a deployment: REST by prefix, gRPC by header, per serving predictor's
    Service (weighted when several), shadows mirrored.  `serving` is (predictor, its Service,
    traffic), `shadows` (predictor, its Service).  Names hold the namespace: two Mappings of one
    name collide in Ambassador."""
    rest_timeout = _timeout(annotations, "seldon.io/rest-read-timeout")
    grpc_timeout = _timeout(annotations, "seldon.io/grpc-read-timeout")
    routes: list[tuple[str, str | None]] = [(f"/seldon/{namespace}/{name}/", namespace)]
    if single_namespace:
        routes.append((f"/seldon/{name}/", None))
    weighted = len(serving) > 1
    targets = [(p, s, w, False) for p, s, w in serving] + [(p, s, None, True) for p, s in shadows]
    mappings: list[dict[str, Any]] = []
    for prefix, header_namespace in routes:
        scope = f"{namespace}_{name}" if header_namespace else f"{name}"
        for predictor, service, weight, shadow in targets:
            suffix = f"_{predictor}" if (weighted or shadow) else ""
            shadow_part = "_shadow" if shadow else ""
            rest: dict[str, Any] = {
                "apiVersion": "ambassador/v1",
                "kind": "Mapping",
                "name": f"seldon_{scope}{suffix}{shadow_part}_rest_mapping",
                "prefix": prefix,
                "service": f"{service}.{namespace}:{ENGINE_HTTP_PORT}",
                "timeout_ms": rest_timeout,
            }
            headers = {"seldon": name, **({"namespace": header_namespace} if header_namespace else {})}
            grpc: dict[str, Any] = {
                "apiVersion": "ambassador/v1",
                "kind": "Mapping",
                "name": f"seldon_{scope}{suffix}{shadow_part}_grpc_mapping",
                "grpc": True,
                "prefix": "/seldon.protos.Seldon/",
                "rewrite": "/seldon.protos.Seldon/",
                "headers": headers,
                "service": f"{service}.{namespace}:{ENGINE_GRPC_PORT}",
                "timeout_ms": grpc_timeout,
            }
            for mapping in (rest, grpc):
                if shadow:
                    mapping["shadow"] = True
                elif weighted and weight is not None:
                    mapping["weight"] = int(weight)
            mappings += [rest, grpc]
    return mappings


def _deployment_service(
    sdep: SeldonDeployment,
    name: str,
    namespace: str,
    serving: list[tuple[PredictorSpec, str]],
    shadows: list[tuple[str, str]],
    options: RenderOptions,
) -> dict[str, Any]:
    annotations = {k: str(v) for k, v in (sdep.spec.annotations or {}).items()}
    single = len(serving) == 1
    targets = [
        (
            p.name,
            names.dns_label(name) if single else service,
            float(p.traffic) if p.traffic is not None else None,
        )
        for p, service in serving
    ]
    mappings = ambassador_mappings(name, namespace, targets, shadows, annotations, options.single_namespace)
    service = _service(
        names.dns_label(name),
        namespace,
        {"seldon-app": names.label_value(name)},
        [("http", ENGINE_HTTP_PORT), ("grpc", ENGINE_GRPC_PORT)],
        {"seldon-deployment-id": names.label_value(name)},
    )
    text = yaml.safe_dump_all(mappings, sort_keys=True, default_flow_style=False)
    service["metadata"]["annotations"] = {"getambassador.io/config": text}
    return service


def _owned(obj: dict[str, Any], sdep: SeldonDeployment, options: RenderOptions) -> dict[str, Any]:
    """Owner references, so that deleting the SeldonDeployment deletes what it made (known only
    when the operator renders: the uid comes from the cluster)."""
    if options.owner_uid is None:
        return obj
    obj["metadata"]["ownerReferences"] = [
        {
            "apiVersion": sdep.api_version,
            "kind": "SeldonDeployment",
            "name": sdep.metadata.name or deployment_name(sdep),
            "uid": options.owner_uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    return obj
