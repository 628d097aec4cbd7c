"""The Kubernetes API as the operator uses it: the few calls of `KubeApi`, and `KubernetesApi`,
their implementation over the `kubernetes` package.  Nothing else in the operator talks to a
cluster, so tests run the operator against an in-memory double of this Protocol.

Objects are plain dicts in the API's own JSON form (camelCase keys), never the client's models:
responses are read raw, so fields a model does not know survive and nothing is renamed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from seldon_serving.protocol.errors import ServingError
from seldon_serving.spec import GROUP, KIND

FIELD_MANAGER = "seldon-serving"  # server-side apply's owner of every field we set
EVENT_SOURCE = "seldon-serving-operator"
# The version the operator watches and writes status at.  Every version is served with one
# schema and conversion None, so this is only the apiVersion the API server writes into bodies.
SDEP_VERSION = "v1alpha2"
SDEP_API_VERSION = f"{GROUP}/{SDEP_VERSION}"
SDEP_PLURAL = "seldondeployments"
DEPLOYMENT_ID_LABEL = "seldon-deployment-id"  # on every object render makes


class KubeError(ServingError):
    """A request the API server refused or that did not reach it (`status` 0)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(
            f"Kubernetes API: {message}" if status == 0 else f"Kubernetes API {status}: {message}"
        )

    @property
    def refused(self) -> bool:
        """The object itself was rejected (400 Bad Request, 422 Invalid): retrying cannot help."""
        return self.status in (400, 422)


class KubeApi(Protocol):
    """The operations the operator needs, nothing more."""

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply of `obj` (fieldManager seldon-serving, force); the live object."""
        ...

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when there is none (only SeldonDeployments are read this way)."""
        ...

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete (dependents in the background); False when it was already gone."""
        ...

    def list_owned(self, namespace: str, deployment_id: str) -> list[dict[str, Any]]:
        """Deployments, Services and HorizontalPodAutoscalers labelled
        `seldon-deployment-id=<deployment_id>` in `namespace`, each with apiVersion and kind."""
        ...

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> bool:
        """JSON merge patch of a SeldonDeployment's status subresource (None deletes a key);
        False when the SeldonDeployment is gone."""
        ...

    def post_event(
        self, involved: Mapping[str, Any], reason: str, message: str, type: str = "Normal"
    ) -> None:
        """A core/v1 Event about `involved` (a body: apiVersion, kind, metadata name/namespace/uid)."""
        ...

    def check_access(self, namespaces: Sequence[str] | None) -> None:
        """KubeError unless SeldonDeployments can be listed in `namespaces` (None: cluster-wide):
        run once at start, so a missing CRD or RBAC rule is one sentence, not a silent idle."""
        ...


# --- helpers both implementations share ------------------------------------------------------------


def event_object(
    involved: Mapping[str, Any], reason: str, message: str, type: str, now: datetime | None = None
) -> dict[str, Any]:
    """The core/v1 Event `post_event` creates (count 1; the API server allows 1 KiB of message)."""
    meta = involved.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default")
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    reference = {
        "apiVersion": involved.get("apiVersion"),
        "kind": involved.get("kind"),
        "name": meta.get("name"),
        "namespace": namespace,
        "uid": meta.get("uid"),
    }
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name') or 'seldon'}.", "namespace": namespace},
        "involvedObject": {k: v for k, v in reference.items() if v is not None},
        "reason": reason,
        "message": message[:1024],
        "type": type,
        "source": {"component": EVENT_SOURCE},
        "count": 1,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
    }


# --- the real API ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Kind:
    api_version: str
    api_class: str  # the kubernetes.client class serving it
    method: str  # `<verb>_namespaced_<method>` in that class


# Exactly the kinds render makes; anything else reaching `apply` is a bug of ours.
OWNED_KINDS: dict[str, _Kind] = {
    "Deployment": _Kind("apps/v1", "AppsV1Api", "deployment"),
    "Service": _Kind("v1", "CoreV1Api", "service"),
    "HorizontalPodAutoscaler": _Kind("autoscaling/v2", "AutoscalingV2Api", "horizontal_pod_autoscaler"),
}


def _message(exc: Any) -> str:
    """The API server's own sentence from an ApiException (its Status body's `message`)."""
    body = getattr(exc, "body", None)
    if body:
        try:
            decoded = json.loads(body)
        except (TypeError, ValueError):
            decoded = None
        if isinstance(decoded, dict) and decoded.get("message"):
            return str(decoded["message"])
    return str(getattr(exc, "reason", None) or exc)


def _json(response: Any) -> dict[str, Any]:
    data = getattr(response, "data", response)
    if isinstance(data, bytes | bytearray):
        data = data.decode("utf-8")
    if not data:
        return {}
    decoded = json.loads(data)
    return decoded if isinstance(decoded, dict) else {}


class KubernetesApi:
    """`KubeApi` over the official client: typed per-kind calls, bodies and answers as raw JSON
    (`_preload_content=False`), errors as KubeError."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self._client = client
        self._apis = {name: getattr(client, name)(api_client) for name in ("AppsV1Api", "CoreV1Api")}
        self._apis["AutoscalingV2Api"] = client.AutoscalingV2Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """Run one request: its JSON answer, None on 404, KubeError otherwise."""
        import urllib3

        try:
            return _json(fn(*args, _preload_content=False, **kwargs))
        except self._client.ApiException as exc:
            if exc.status == 404:
                return None
            raise KubeError(int(exc.status or 0), _message(exc)) from None
        except urllib3.exceptions.HTTPError as exc:
            raise KubeError(0, f"cannot reach the API server: {exc}") from None

    def _kind(self, kind: str) -> tuple[Any, str]:
        found = OWNED_KINDS.get(kind)
        if found is None:
            raise KubeError(0, f"the operator does not manage {kind} objects")
        return self._apis[found.api_class], found.method

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        api, method = self._kind(str(obj.get("kind")))
        meta = obj["metadata"]
        live = self._call(
            getattr(api, f"patch_namespaced_{method}"),
            meta["name"],
            meta["namespace"],
            dict(obj),
            field_manager=FIELD_MANAGER,
            force=True,
            # JSON is YAML, so the dict goes as JSON under apply-patch's content type.
            _content_type="application/apply-patch+yaml",
        )
        if live is None:  # the namespace itself is missing
            raise KubeError(404, f"namespace {meta['namespace']} not found")
        return live

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        if kind == KIND:
            group, _, version = api_version.rpartition("/")
            return self._call(
                self._custom.get_namespaced_custom_object, group, version, namespace, SDEP_PLURAL, name
            )
        api, method = self._kind(kind)
        return self._call(getattr(api, f"read_namespaced_{method}"), name, namespace)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        api, method = self._kind(kind)
        done = self._call(
            getattr(api, f"delete_namespaced_{method}"), name, namespace, propagation_policy="Background"
        )
        return done is not None

    def list_owned(self, namespace: str, deployment_id: str) -> list[dict[str, Any]]:
        selector = f"{DEPLOYMENT_ID_LABEL}={deployment_id}"
        found: list[dict[str, Any]] = []
        for kind, spec in OWNED_KINDS.items():
            api = self._apis[spec.api_class]
            listed = self._call(
                getattr(api, f"list_namespaced_{spec.method}"), namespace, label_selector=selector
            )
            # A List's items carry neither apiVersion nor kind: the List's type says them.
            for item in (listed or {}).get("items") or []:
                found.append({"apiVersion": spec.api_version, "kind": kind, **item})
        return found

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> bool:
        done = self._call(
            self._custom.patch_namespaced_custom_object_status,
            GROUP,
            SDEP_VERSION,
            namespace,
            SDEP_PLURAL,
            name,
            {"status": dict(status)},
            # Custom resources take no strategic merge patch; a merge patch replaces lists whole.
            _content_type="application/merge-patch+json",
        )
        return done is not None

    def post_event(
        self, involved: Mapping[str, Any], reason: str, message: str, type: str = "Normal"
    ) -> None:
        event = event_object(involved, reason, message, type)
        self._call(self._apis["CoreV1Api"].create_namespaced_event, event["metadata"]["namespace"], event)

    def check_access(self, namespaces: Sequence[str] | None) -> None:
        where = list(namespaces) if namespaces else [None]
        for namespace in where:
            try:
                if namespace is None:
                    listed = self._call(
                        self._custom.list_cluster_custom_object, GROUP, SDEP_VERSION, SDEP_PLURAL, limit=1
                    )
                else:
                    listed = self._call(
                        self._custom.list_namespaced_custom_object,
                        GROUP,
                        SDEP_VERSION,
                        namespace,
                        SDEP_PLURAL,
                        limit=1,
                    )
            except KubeError as exc:
                if exc.status == 403:
                    scope = f"in namespace {namespace}" if namespace else "cluster-wide"
                    raise KubeError(
                        403, f"the operator may not list {SDEP_PLURAL} {scope}: check the install's RBAC"
                    ) from None
                raise
            if listed is None:
                raise KubeError(
                    404,
                    f"{SDEP_PLURAL}.{GROUP} is not served at {SDEP_VERSION}: "
                    "install the CRD first (`seldon k8s install`)",
                )


def connect() -> KubernetesApi:
    """The cluster's API: in-cluster service account first, else the kubeconfig (as kubectl)."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        try:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        except (config.ConfigException, OSError) as exc:
            raise KubeError(
                0, f"no cluster credentials: not in a pod and no usable kubeconfig ({exc})"
            ) from None
    return KubernetesApi(client.ApiClient())
