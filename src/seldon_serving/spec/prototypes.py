"""The seed's ksonnet prototypes (`ks generate seldon-<prototype>-<version> NAME ...`), as Python.

Output matches the Kubeflow v0.5.1 jsonnet field for field (SELDON-REFERENCE 6.4), quirks
included, because users diff our manifests against the ones they already have: the empty
`volumeMounts`/`imagePullSecrets`/`volumes` lists on model pods only, the missing
`imagePullSecrets` on abtest's second pod, both abtest pods labelled `version: v2`, and the
`kind: List` wrapper with the PersistentVolumeClaim first when `pvc_name` is given.
"""

from __future__ import annotations

import re
from typing import Any

from seldon_serving.spec.enums import API_VERSIONS, GROUP, KIND
from seldon_serving.spec.errors import ManifestError
from seldon_serving.spec.names import dns_name_problem

PROTOTYPES: tuple[str, ...] = ("serve-simple", "abtest", "mab", "outlier-detector")
# `generate mab --router NAME`: a built-in router by implementation name (no router pod) and
# its parameters, written out with their defaults so a user sees what can be tuned.
MAB_ROUTERS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "UCB1": (),
    "UCB1_TUNED": (),
    "EPSILON_GREEDY": (("epsilon", "1.0", "FLOAT"), ("decay", "0.1", "FLOAT")),
    "THOMPSON_SAMPLING": (("reward_model", "beta", "STRING"),),
    "LINUCB": (("alpha", "1.0", "FLOAT"),),
}
_FULL_NAME = re.compile(r"^(?:seldon-)?(?P<proto>.+?)-(?P<version>v1alpha1|v1alpha2)$")
_VOLUME = "persistent-storage"


def seldon_version_to_api_version(seldon_version: str) -> str:
    """The CRD version a Seldon release serves: 0.1.x -> "v1alpha1", anything newer -> "v1alpha2"."""
    return "v1alpha1" if seldon_version.strip().startswith("0.1") else "v1alpha2"


def parse_prototype_name(name: str) -> tuple[str, str | None]:
    """("mab", "v1alpha1") from "seldon-mab-v1alpha1"; ("mab", None) from "mab"."""
    match = _FULL_NAME.match(name)
    if match and match["proto"] in PROTOTYPES:
        return match["proto"], match["version"]
    return name.removeprefix("seldon-"), None


class _Options:
    """The prototype's parameters after checking, with the jsonnet's "unset" rules applied."""

    def __init__(self, pvc_name: str | None, image_pull_secret: str | None) -> None:
        self.pvc = pvc_name or None  # jsonnet treats "" like null
        self.secret = image_pull_secret or None

    def model_container(self, name: str, image: str) -> dict[str, Any]:
        mounts = [{"mountPath": "/mnt", "name": _VOLUME}] if self.pvc else []
        return {"image": image, "imagePullPolicy": "IfNotPresent", "name": name, "volumeMounts": mounts}

    def model_pod(self, containers: list[dict[str, Any]], *, pull_secrets: bool = True) -> dict[str, Any]:
        pod: dict[str, Any] = {"containers": containers}
        if pull_secrets:
            pod["imagePullSecrets"] = [{"name": self.secret}] if self.secret else []
        pod["terminationGracePeriodSeconds"] = 1
        pod["volumes"] = (
            [{"name": _VOLUME, "volumeSource": {"persistentVolumeClaim": {"claimName": self.pvc}}}]
            if self.pvc
            else []
        )
        return pod


def _plain_container(name: str, image: str) -> dict[str, Any]:
    return {"image": image, "imagePullPolicy": "IfNotPresent", "name": name}


def _plain_pod(container: dict[str, Any]) -> dict[str, Any]:
    return {"containers": [container], "terminationGracePeriodSeconds": 1}


def _model_node(name: str, endpoint: str) -> dict[str, Any]:
    return {"children": [], "endpoint": {"type": endpoint}, "name": name, "type": "MODEL"}


def _param(name: str, value: str, kind: str) -> dict[str, str]:
    return {"name": name, "type": kind, "value": value}


def _required(value: str | None, flag: str, prototype: str) -> str:
    if not value:
        raise ManifestError("", f"--{flag} is required for {prototype}")
    return value


def _endpoint(value: str, flag: str) -> str:
    upper = value.upper()
    if upper not in ("REST", "GRPC"):
        raise ManifestError("", f"--{flag} must be REST or GRPC, got {value!r}")
    return upper


class _Pod:
    """One container of a prototype and the pod-level quirks of the pod it gets in v1alpha2."""

    def __init__(
        self, name: str, image: str, *, model: bool, version: str | None = None, pull_secrets: bool = True
    ) -> None:
        self.name, self.image, self.model = name, image, model
        self.version, self.pull_secrets = version, pull_secrets


def _layout(prototype: str, name: str, images: dict[str, str]) -> list[_Pod]:
    """The prototype's containers in the jsonnet's order; routers and detectors get no volumes
    (a built-in router named by `implementation` gets no container at all)."""
    match prototype:
        case "serve-simple":
            return [_Pod(name, images["image"], model=True)]
        case "abtest":
            return [
                _Pod("classifier-1", images["imageA"], model=True, version="v2"),
                _Pod("classifier-2", images["imageB"], model=True, version="v2", pull_secrets=False),
            ]
        case "mab":
            return [
                _Pod("classifier-1", images["imageA"], model=True, version="v1"),
                _Pod("classifier-2", images["imageB"], model=True, version="v2"),
                *([_Pod("eg-router", images["mabImage"], model=False)] if "mabImage" in images else []),
            ]
        case _:  # outlier-detector
            return [
                _Pod(name, images["image"], model=True),
                _Pod("outlier-detector", images["outlierDetectorImage"], model=False),
            ]


def _container(o: _Options, pod: _Pod) -> dict[str, Any]:
    return o.model_container(pod.name, pod.image) if pod.model else _plain_container(pod.name, pod.image)


def _component_specs(o: _Options, pods: list[_Pod]) -> list[dict[str, Any]]:
    """v1alpha2: one pod template per container, each exactly as its prototype writes it."""
    specs: list[dict[str, Any]] = []
    for pod in pods:
        template: dict[str, Any] = {}
        if pod.version:
            template["metadata"] = {"labels": {"version": pod.version}}
        container = _container(o, pod)
        template["spec"] = (
            o.model_pod([container], pull_secrets=pod.pull_secrets) if pod.model else _plain_pod(container)
        )
        specs.append(template)
    return specs


def _component_spec(o: _Options, pods: list[_Pod]) -> dict[str, Any]:
    """v1alpha1: every container in one pod, which carries the pod-level lists once."""
    return {"spec": o.model_pod([_container(o, pod) for pod in pods])}


def _graph(prototype: str, name: str, endpoints: dict[str, str], router: str | None = None) -> dict[str, Any]:
    match prototype:
        case "serve-simple":
            return _model_node(name, endpoints["endpoint"])
        case "abtest":
            return {
                "children": [
                    _model_node("classifier-1", endpoints["endpointA"]),
                    _model_node("classifier-2", endpoints["endpointB"]),
                ],
                "endpoint": {},
                "implementation": "RANDOM_ABTEST",
                "name": "random-ab-test",
                "parameters": [_param("ratioA", "0.5", "FLOAT")],
            }
        case "mab" if router is not None:
            return {
                "children": [
                    _model_node("classifier-1", endpoints["endpointA"]),
                    _model_node("classifier-2", endpoints["endpointB"]),
                ],
                "implementation": router,
                "name": "mab-router",
                "parameters": [_param("n_branches", "2", "INT")] + [_param(*p) for p in MAB_ROUTERS[router]],
                "type": "ROUTER",
            }
        case "mab":
            return {
                "children": [
                    _model_node("classifier-1", endpoints["endpointA"]),
                    _model_node("classifier-2", endpoints["endpointB"]),
                ],
                "name": "eg-router",
                "parameters": [
                    _param("n_branches", "2", "INT"),
                    _param("epsilon", "0.2", "FLOAT"),
                    _param("verbose", "1", "BOOL"),
                ],
                "type": "ROUTER",
            }
        case _:  # outlier-detector
            return {
                "children": [_model_node(name, endpoints["endpoint"])],
                "endpoint": {"type": "REST"},
                "name": "outlier-detector",
                "type": "TRANSFORMER",
            }


def generate(
    prototype: str,
    name: str,
    *,
    image: str | None = None,
    image_a: str | None = None,
    image_b: str | None = None,
    mab_image: str = "seldonio/mab_epsilon_greedy:1.1",
    router: str | None = None,
    outlier_detector_image: str = "seldonio/outlier_mahalanobis:0.3",
    replicas: int = 1,
    endpoint: str = "REST",
    endpoint_a: str = "REST",
    endpoint_b: str = "REST",
    pvc_name: str | None = None,
    image_pull_secret: str | None = None,
    oauth_key: str = "",
    oauth_secret: str = "",
    api_version: str = "v1alpha2",
    namespace: str | None = None,
) -> dict[str, Any]:
    """`{"apiVersion": "v1", "kind": "List", "items": [PVC?, SeldonDeployment]}` for one prototype.

    `prototype` is "serve-simple", "abtest", "mab" or "outlier-detector", or the ksonnet name
    ("seldon-mab-v1alpha1"), whose version suffix then overrides `api_version`.
    `router` (mab only) names a built-in bandit router (`MAB_ROUTERS`) run by implementation
    name, instead of the `mab_image` container.
    Missing or bad options raise ManifestError ("--imageA is required for abtest").
    """
    proto, named_version = parse_prototype_name(prototype)
    if proto not in PROTOTYPES:
        raise ManifestError("", f"unknown prototype {prototype!r}; choose one of {', '.join(PROTOTYPES)}")
    version = named_version or api_version.removeprefix(f"{GROUP}/")
    if version not in API_VERSIONS:
        raise ManifestError("", f"--apiVersion must be one of {', '.join(API_VERSIONS)}, got {api_version!r}")
    problem = dns_name_problem(name) if name else "a name is required"
    if problem:
        raise ManifestError("", f"{problem} (the deployment NAME)")
    if router is not None:
        router = router.strip().upper()
        if proto != "mab":
            raise ManifestError("", f"--router is for the mab prototype only, not {proto}")
        if router not in MAB_ROUTERS:
            raise ManifestError("", f"unknown router {router!r}; choose one of {', '.join(MAB_ROUTERS)}")
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise ManifestError("", f"--replicas must be a whole number >= 0, got {replicas!r}")

    if proto in ("serve-simple", "outlier-detector"):
        images = {"image": _required(image, "image", proto)}
        if proto == "outlier-detector":
            images["outlierDetectorImage"] = _required(outlier_detector_image, "outlierDetectorImage", proto)
            if name == "outlier-detector":
                raise ManifestError("", "NAME must differ from the detector's node name 'outlier-detector'")
        endpoints = {"endpoint": _endpoint(endpoint, "endpoint")}
    else:
        images = {
            "imageA": _required(image_a, "imageA", proto),
            "imageB": _required(image_b, "imageB", proto),
        }
        if proto == "mab" and router is None:
            images["mabImage"] = _required(mab_image, "mabImage", proto)
        endpoints = {
            "endpointA": _endpoint(endpoint_a, "endpointA"),
            "endpointB": _endpoint(endpoint_b, "endpointB"),
        }

    options = _Options(pvc_name, image_pull_secret)
    predictor: dict[str, Any] = {}
    if proto in ("serve-simple", "outlier-detector"):
        predictor["annotations"] = {"predictor_version": "v1"}
    pods = _layout(proto, name, images)
    if version == "v1alpha1":
        predictor["componentSpec"] = _component_spec(options, pods)
    else:
        predictor["componentSpecs"] = _component_specs(options, pods)
    predictor["graph"] = _graph(proto, name, endpoints, router)
    predictor["name"] = name
    predictor["replicas"] = replicas

    metadata: dict[str, Any] = {"labels": {"app": "seldon"}, "name": name}
    if namespace:
        metadata["namespace"] = namespace
    deployment = {
        "apiVersion": API_VERSIONS[version],
        "kind": KIND,
        "metadata": metadata,
        "spec": {
            "annotations": {"deployment_version": "v1", "project_name": name},
            "name": name,
            "oauth_key": oauth_key,
            "oauth_secret": oauth_secret,
            "predictors": [predictor],
        },
    }
    items: list[dict[str, Any]] = []
    if options.pvc:
        items.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": options.pvc},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}},
            }
        )
    items.append(deployment)
    return {"apiVersion": "v1", "kind": "List", "items": items}
