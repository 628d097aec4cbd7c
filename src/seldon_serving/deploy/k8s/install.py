"""The core install (`seldon k8s install`): what Kubeflow's `ks generate seldon seldon` made
(SELDON-REFERENCE 6.1), as plain Kubernetes objects for `kubectl apply -f -`.

The SeldonDeployment CRD; the operator (our runtime image running `seldon k8s operator`) with
its ServiceAccount, RBAC and image map; Redis, where engine replicas, routers and detectors
share their state; optionally the OAuth API front end (`seldon serve --oauth`) and Ambassador.

Output is deterministic (no timestamps, no random parts), so applying it again changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from seldon_serving import __version__
from seldon_serving.deploy.k8s import config
from seldon_serving.deploy.k8s.crd import PART_OF, PLURAL, crd
from seldon_serving.deploy.k8s.render import RenderOptions
from seldon_serving.protocol.errors import ServingError
from seldon_serving.spec import GROUP

SERVICE_TYPES = ("NodePort", "LoadBalancer", "ClusterIP")
DEFAULT_REPOSITORY = "seldonio-serving"
# The last Redis line under the BSD licence; the store needs nothing newer.
DEFAULT_REDIS_IMAGE = "redis:7.2"
# The Ambassador of Seldon 0.2's days, which reads Mappings from Service annotations.
DEFAULT_AMBASSADOR_IMAGE = "quay.io/datawire/ambassador:0.40.2"

OPERATOR_LIVENESS_PORT = 8080
APIFE_HTTP_PORT, APIFE_GRPC_PORT = 8080, 5000  # Seldon's apife ports
APIFE_STATE_DIR = "/var/lib/seldon-serving"
REDIS_PORT = 6379
REDIS_USER = 999  # the `redis` user of the official image, which owns /data
AMBASSADOR_PORT, AMBASSADOR_ADMIN_PORT = 8080, 8877
AMBASSADOR_USER = 8888  # what Ambassador's docs run it as when not root

# The longest suffix put after --name on a Service (at most 63 characters).
_LONGEST_SUFFIX = "-seldon-apiserver"
_MAX_NAME = 63 - len(_LONGEST_SUFFIX)
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_REGISTRY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]+)?$")
_REPO_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_REPO_PART}(?:/{_REPO_PART})*$")
_INT32_MAX = 2**31 - 1

# What the operator does to what: the SeldonDeployments it reconciles and reports on, the
# objects it renders for them (SELDON-REFERENCE 5.6), and the Events kopf posts about them.
_CHILD_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
OPERATOR_RULES: list[dict[str, Any]] = [
    {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["get", "list", "watch", "patch", "update"]},
    {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["get", "patch", "update"]},
    # Owner references with blockOwnerDeletion need this where the API server enforces
    # OwnerReferencesPermissionEnforcement (OpenShift does by default).
    {"apiGroups": [GROUP], "resources": [f"{PLURAL}/finalizers"], "verbs": ["update"]},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": list(_CHILD_VERBS)},
    {"apiGroups": [""], "resources": ["services"], "verbs": list(_CHILD_VERBS)},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": list(_CHILD_VERBS)},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
]
# Ambassador's own RBAC (its 0.40 manifests), plus endpoints, which later versions read.
AMBASSADOR_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["services", "endpoints", "secrets"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "verbs": ["create", "update", "patch", "get", "list", "watch"],
    },
]


class InstallError(ServingError):
    """An install option Kubernetes would refuse, said before anything is printed."""


@dataclass(frozen=True)
class InstallOptions:
    """The core install's parameters (Kubeflow's `seldon` prototype, SELDON-REFERENCE 6.1)."""

    name: str = "seldon"  # prefix of every object's name
    namespace: str = "default"  # where the operator, Redis and the front ends run
    rbac: bool = True
    single_namespace: bool = True  # watch only `namespace` (Role) or every namespace (ClusterRole)
    apife: bool = False
    apife_service_type: str = "NodePort"
    ambassador: bool = False
    ambassador_service_type: str = "NodePort"
    seldon_version: str = __version__  # the runtime image's tag
    registry: str | None = None
    repository: str = DEFAULT_REPOSITORY
    image: str | None = None  # the runtime image as a whole, instead of registry/repository/version
    engine_user: int = 8888
    engine_service_account: str | None = None  # of the engines' pods [the namespace's default]
    grpc_max_message_size: int = 4 * 1024 * 1024
    redis_image: str = DEFAULT_REDIS_IMAGE
    ambassador_image: str = DEFAULT_AMBASSADOR_IMAGE

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem:
            raise InstallError(problem)

    def problem(self) -> str | None:
        """The first option Kubernetes would refuse, as one sentence, or None."""
        if len(self.name) > _MAX_NAME or not _DNS_1035.match(self.name):
            return (
                f"--name {self.name!r} must be at most {_MAX_NAME} lowercase letters, digits and '-', "
                f"starting with a letter and ending with a letter or digit (it prefixes Service names "
                f"such as {self.name}{_LONGEST_SUFFIX})"
            )
        if len(self.namespace) > 63 or not _DNS_1123.match(self.namespace):
            return (
                f"--namespace {self.namespace!r} must be at most 63 lowercase letters, digits and '-', "
                "starting and ending with a letter or digit"
            )
        for flag, kind in (
            ("--apife-service-type", self.apife_service_type),
            ("--ambassador-service-type", self.ambassador_service_type),
        ):
            if kind not in SERVICE_TYPES:
                return f"{flag} {kind!r} must be one of {', '.join(SERVICE_TYPES)}"
        if not _TAG.match(self.seldon_version):
            return (
                f"--seldon-version {self.seldon_version!r} is not an image tag: use letters, digits, "
                "'_', '.' and '-' (at most 128, not starting with '.' or '-')"
            )
        if self.registry is not None and not _REGISTRY.match(self.registry):
            return f"--registry {self.registry!r} must be a host name with an optional port, e.g. gcr.io"
        if not _REPOSITORY.match(self.repository):
            return (
                f"--repository {self.repository!r} must be lowercase path parts separated by '/', "
                "e.g. seldonio-serving"
            )
        for flag, image in (
            ("--image", self.image),
            ("--redis-image", self.redis_image),
            ("--ambassador-image", self.ambassador_image),
        ):
            if image is not None and (not image or any(c.isspace() for c in image)):
                return f"{flag} {image!r} must be an image reference without spaces"
        if self.engine_service_account is not None and not _DNS_1123.match(self.engine_service_account):
            return (
                f"--engine-service-account {self.engine_service_account!r} must be lowercase letters, "
                "digits and '-', starting and ending with a letter or digit"
            )
        if not 1 <= self.engine_user <= _INT32_MAX:
            return f"--engine-user {self.engine_user} must be a non-root user id (1 to {_INT32_MAX})"
        if not 1 <= self.grpc_max_message_size <= _INT32_MAX:
            return f"--grpc-max-message-size {self.grpc_max_message_size} must be 1 to {_INT32_MAX} bytes"
        return None

    @property
    def runtime_image(self) -> str:
        """`--image`, else `[<registry>/]<repository>/seldon-serving:<seldon-version>`."""
        if self.image:
            return self.image
        prefix = f"{self.registry}/" if self.registry else ""
        return f"{prefix}{self.repository}/seldon-serving:{self.seldon_version}"

    def render_options(self) -> RenderOptions:
        """What the operator renders SeldonDeployments with (it reads them back from its env)."""
        return RenderOptions(
            runtime_image=self.runtime_image,
            install_name=self.name,
            install_namespace=self.namespace,
            engine_user=self.engine_user,
            engine_service_account=self.engine_service_account,
            single_namespace=self.single_namespace,
            grpc_max_message_size=self.grpc_max_message_size,
            front_end=self.apife,  # the operator then also stores each deployment for it
        )

    # --- names -------------------------------------------------------------------------------

    @property
    def operator_name(self) -> str:
        return f"{self.name}-seldon-operator"

    @property
    def redis_name(self) -> str:
        return f"{self.name}-redis"

    @property
    def apife_name(self) -> str:
        return f"{self.name}-seldon-apiserver"

    @property
    def ambassador_name(self) -> str:
        return f"{self.name}-ambassador"

    def cluster_name(self, base: str) -> str:
        """A cluster-scoped object's name: `<base>-<namespace>`."""
        return f"{base}-{self.namespace}"


def install_objects(options: InstallOptions | None = None) -> list[dict[str, Any]]:
    """Every object of the install, in an order `kubectl apply` can follow (the CRD first,
    accounts and permissions before the Deployments that use them)."""
    options = options or InstallOptions()
    objects: list[dict[str, Any]] = [crd(), _images_configmap(options)]
    if options.rbac:
        objects += _operator_rbac(options)
    objects += [_redis_service(options), _redis_deployment(options), _operator_deployment(options)]
    if options.apife:
        objects += [_apife_service(options), _apife_deployment(options)]
    if options.ambassador:
        if options.rbac:
            objects += _ambassador_rbac(options)
        objects += [_ambassador_service(options), _ambassador_deployment(options)]
    return objects


# --- shared pieces -------------------------------------------------------------------------------


def _labels(options: InstallOptions, component: str) -> dict[str, str]:
    return {**_selector(options, component), **PART_OF}


def _selector(options: InstallOptions, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": component, "app.kubernetes.io/instance": options.name}


def _metadata(
    options: InstallOptions, name: str, component: str, *, namespaced: bool = True
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespaced:
        meta["namespace"] = options.namespace
    meta["labels"] = _labels(options, component)
    return meta


def _rules(*groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Copies: the module-level rule lists must not be shared by every printed object.
    return [{key: list(value) for key, value in rule.items()} for group in groups for rule in group]


def _binding(
    options: InstallOptions, kind: str, name: str, role_kind: str, role: str, account: str, component: str
) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": _metadata(options, name, component, namespaced=kind == "RoleBinding"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": options.namespace}],
    }


def _role(
    options: InstallOptions, kind: str, name: str, rules: list[dict[str, Any]], component: str
) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": _metadata(options, name, component, namespaced=kind == "Role"),
        "rules": rules,
    }


def _service_account(options: InstallOptions, name: str, component: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(options, name, component)}


def _account_rbac(
    options: InstallOptions, account: str, component: str, rules: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A ServiceAccount with `rules`: in a Role of the install's namespace when it serves that
    one namespace, else in a ClusterRole (its name holds the namespace: installs in two
    namespaces must not overwrite each other's)."""
    if options.single_namespace:
        kind, binding, name = "Role", "RoleBinding", account
    else:
        kind, binding, name = "ClusterRole", "ClusterRoleBinding", options.cluster_name(account)
    return [
        _service_account(options, account, component),
        _role(options, kind, name, _rules(rules), component),
        _binding(options, binding, name, kind, name, account, component),
    ]


def _service(
    options: InstallOptions,
    name: str,
    component: str,
    kind: str,
    ports: list[tuple[str, int, int]],
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta = _metadata(options, name, component)
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": kind,
            "selector": _selector(options, component),
            "ports": [
                {"name": port_name, "port": port, "targetPort": target, "protocol": "TCP"}
                for port_name, port, target in ports
            ],
        },
    }


def _restricted(user: int) -> dict[str, Any]:
    """A pod securityContext that meets the "restricted" Pod Security Standard."""
    return {"runAsNonRoot": True, "runAsUser": user, "seccompProfile": {"type": "RuntimeDefault"}}


_CONTAINER_SECURITY: dict[str, Any] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _deployment(
    options: InstallOptions,
    name: str,
    component: str,
    pod: dict[str, Any],
    *,
    recreate: bool = False,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    template_meta: dict[str, Any] = {"labels": _labels(options, component)}
    if annotations:
        template_meta["annotations"] = annotations
    spec: dict[str, Any] = {"replicas": 1}
    if recreate:
        # Never two at once, not even during a rollout.
        spec["strategy"] = {"type": "Recreate"}
    spec["selector"] = {"matchLabels": _selector(options, component)}
    spec["template"] = {"metadata": template_meta, "spec": pod}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(options, name, component),
        "spec": spec,
    }


# --- the operator --------------------------------------------------------------------------------

_OPERATOR = "seldon-operator"


def _images_configmap(options: InstallOptions) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(options, config.images_configmap_name(options.name), _OPERATOR),
        "data": {config.IMAGES_KEY: config.images_document()},
    }


def _operator_rbac(options: InstallOptions) -> list[dict[str, Any]]:
    """The operator's account and permissions, OPERATOR_RULES and nothing else: it runs kopf
    standalone with scanning off (no peering objects, no watching CustomResourceDefinitions or
    namespaces), and reads its image map from the mounted ConfigMap, which the kubelet
    fetches, not its account."""
    return _account_rbac(options, options.operator_name, _OPERATOR, OPERATOR_RULES)


def operator_args(options: InstallOptions) -> list[str]:
    """`seldon k8s operator`'s arguments: which namespaces to watch, where to answer /healthz."""
    watch = ["--namespace", options.namespace] if options.single_namespace else ["--all-namespaces"]
    return [*watch, "--liveness-port", str(OPERATOR_LIVENESS_PORT)]


def _operator_deployment(options: InstallOptions) -> dict[str, Any]:
    images = config.images_document()
    watch_namespace = options.namespace if options.single_namespace else None
    container: dict[str, Any] = {
        "name": "operator",
        "image": options.runtime_image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["seldon", "k8s", "operator"],
        "args": operator_args(options),
        "env": config.operator_env(options.render_options(), watch_namespace),
        "ports": [{"name": "healthz", "containerPort": OPERATOR_LIVENESS_PORT, "protocol": "TCP"}],
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": OPERATOR_LIVENESS_PORT},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "timeoutSeconds": 5,
        },
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "securityContext": dict(_CONTAINER_SECURITY),
        "volumeMounts": [{"name": "images", "mountPath": config.IMAGES_MOUNT_DIR, "readOnly": True}],
    }
    pod: dict[str, Any] = {}
    if options.rbac:
        pod["serviceAccountName"] = options.operator_name
    pod.update(
        {
            # The runtime image's user: the engines run as it too (--engine-user).
            "securityContext": _restricted(options.engine_user),
            "containers": [container],
            "volumes": [
                {"name": "images", "configMap": {"name": config.images_configmap_name(options.name)}}
            ],
        }
    )
    # The operator reads the image map when it starts: a new map must restart it.
    checksum = hashlib.sha256(images.encode()).hexdigest()
    return _deployment(
        options,
        options.operator_name,
        _OPERATOR,
        pod,
        recreate=True,
        annotations={"checksum/images": checksum},
    )


# --- Redis ----------------------------------------------------------------------------------------

_REDIS = "redis"


def _redis_service(options: InstallOptions) -> dict[str, Any]:
    return _service(options, options.redis_name, _REDIS, "ClusterIP", [("redis", REDIS_PORT, REDIS_PORT)])


def _redis_deployment(options: InstallOptions) -> dict[str, Any]:
    probe = {"tcpSocket": {"port": REDIS_PORT}, "periodSeconds": 10}
    container = {
        "name": "redis",
        "image": options.redis_image,
        "imagePullPolicy": "IfNotPresent",
        # An append-only file on the pod's volume: router and token state outlive a crash.
        "args": ["--appendonly", "yes"],
        "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "readinessProbe": {**probe, "initialDelaySeconds": 2},
        "livenessProbe": {**probe, "initialDelaySeconds": 15},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
        "securityContext": dict(_CONTAINER_SECURITY),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    pod = {
        "automountServiceAccountToken": False,  # Redis never talks to the API server
        "securityContext": {**_restricted(REDIS_USER), "runAsGroup": REDIS_USER, "fsGroup": REDIS_USER},
        "containers": [container],
        "volumes": [{"name": "data", "emptyDir": {}}],
    }
    # One Redis holds the state: two during a rollout would split it.
    return _deployment(options, options.redis_name, _REDIS, pod, recreate=True)


# --- the OAuth API front end ------------------------------------------------------------------------

_APIFE = "seldon-apiserver"


def apife_command(options: InstallOptions) -> list[str]:
    """`seldon serve --oauth` on Seldon's apife ports, running no graph itself: it forwards to
    the engines on the cluster, learning deployments (which the operator writes) and sharing
    tokens through the install's Redis, so every replica answers alike."""
    return [
        "seldon",
        "serve",
        "--oauth",
        "--cluster-engines",
        "--state-store",
        options.render_options().store(),
        "--http-port",
        str(APIFE_HTTP_PORT),
        "--grpc-port",
        str(APIFE_GRPC_PORT),
        "--max-message-size",
        str(options.grpc_max_message_size),
        "--state-dir",
        APIFE_STATE_DIR,
    ]


def _apife_service(options: InstallOptions) -> dict[str, Any]:
    ports = [("http", APIFE_HTTP_PORT, APIFE_HTTP_PORT), ("grpc", APIFE_GRPC_PORT, APIFE_GRPC_PORT)]
    return _service(options, options.apife_name, _APIFE, options.apife_service_type, ports)


def _apife_deployment(options: InstallOptions) -> dict[str, Any]:
    container = {
        "name": "apiserver",
        "image": options.runtime_image,
        "imagePullPolicy": "IfNotPresent",
        "command": apife_command(options),
        "ports": [
            {"name": "http", "containerPort": APIFE_HTTP_PORT, "protocol": "TCP"},
            {"name": "grpc", "containerPort": APIFE_GRPC_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": {
            "httpGet": {"path": "/ping", "port": APIFE_HTTP_PORT},
            "initialDelaySeconds": 5,
            "periodSeconds": 5,
        },
        "livenessProbe": {
            "httpGet": {"path": "/live", "port": APIFE_HTTP_PORT},
            "initialDelaySeconds": 15,
            "periodSeconds": 10,
        },
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "securityContext": dict(_CONTAINER_SECURITY),
        "volumeMounts": [{"name": "state", "mountPath": APIFE_STATE_DIR}],
    }
    pod = {
        "automountServiceAccountToken": False,  # it learns deployments and tokens from Redis
        "securityContext": _restricted(options.engine_user),
        "containers": [container],
        "volumes": [{"name": "state", "emptyDir": {}}],
    }
    return _deployment(options, options.apife_name, _APIFE, pod)


# --- Ambassador ---------------------------------------------------------------------------------------

_AMBASSADOR = "ambassador"


def _ambassador_rbac(options: InstallOptions) -> list[dict[str, Any]]:
    """Ambassador reads the Services' `getambassador.io/config` annotations: of its own
    namespace only (AMBASSADOR_SINGLE_NAMESPACE, a Role) or of every namespace (a ClusterRole)."""
    return _account_rbac(options, options.ambassador_name, _AMBASSADOR, AMBASSADOR_RULES)


def ambassador_module() -> str:
    """The annotation of Ambassador's own Service: listen on 8080, as a non-root user must."""
    return (
        "---\n"
        "apiVersion: ambassador/v1\n"
        "kind: Module\n"
        "name: ambassador\n"
        "config:\n"
        f"  service_port: {AMBASSADOR_PORT}\n"
    )


def _ambassador_service(options: InstallOptions) -> dict[str, Any]:
    return _service(
        options,
        options.ambassador_name,
        _AMBASSADOR,
        options.ambassador_service_type,
        [("http", 80, AMBASSADOR_PORT)],
        annotations={"getambassador.io/config": ambassador_module()},
    )


def _ambassador_deployment(options: InstallOptions) -> dict[str, Any]:
    env: list[dict[str, Any]] = [
        {"name": "AMBASSADOR_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]
    if options.single_namespace:
        env.append({"name": "AMBASSADOR_SINGLE_NAMESPACE", "value": "true"})
    container = {
        "name": "ambassador",
        "image": options.ambassador_image,
        "imagePullPolicy": "IfNotPresent",
        "env": env,
        "ports": [
            {"name": "http", "containerPort": AMBASSADOR_PORT, "protocol": "TCP"},
            {"name": "admin", "containerPort": AMBASSADOR_ADMIN_PORT, "protocol": "TCP"},
        ],
        "livenessProbe": {
            "httpGet": {"path": "/ambassador/v0/check_alive", "port": AMBASSADOR_ADMIN_PORT},
            "initialDelaySeconds": 30,
            "periodSeconds": 3,
        },
        "readinessProbe": {
            "httpGet": {"path": "/ambassador/v0/check_ready", "port": AMBASSADOR_ADMIN_PORT},
            "initialDelaySeconds": 30,
            "periodSeconds": 3,
        },
        # Seldon's chart's values for Ambassador.
        "resources": {
            "requests": {"cpu": "200m", "memory": "100Mi"},
            "limits": {"cpu": "1", "memory": "400Mi"},
        },
        "securityContext": dict(_CONTAINER_SECURITY),
    }
    pod: dict[str, Any] = {}
    if options.rbac:
        pod["serviceAccountName"] = options.ambassador_name
    pod.update({"securityContext": _restricted(AMBASSADOR_USER), "containers": [container]})
    # An Istio sidecar in front of the gateway would intercept what it routes.
    return _deployment(
        options,
        options.ambassador_name,
        _AMBASSADOR,
        pod,
        annotations={"sidecar.istio.io/inject": "false"},
    )
