"""An in-memory double of the Kubernetes API behind `KubeApi` (the one fake allowed: no cluster
runs here).  It keeps what the operator's correctness depends on:

- server-side apply by one field manager: the applied fields replace the previous applied
  ones, server fields (uid, status, ...) stay; `resourceVersion` moves only when something
  changed and `generation` only when more than metadata changed, so re-applying an identical
  object is a no-op, as on a real API server;
- objects are checked against Kubernetes' own OpenAPI schemas (kubernetes-validate, strict)
  and name/label rules, a refusal being a 422 KubeError as the API server answers;
- CRD conversion None: a SeldonDeployment is read back at any version with only apiVersion
  rewritten;
- garbage collection: deleting an owner deletes the objects whose ownerReferences name its uid;
- status patches are JSON merge patches; Events and every call are recorded for assertions.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]

from seldon_serving.deploy.k8s.kube import (
    DEPLOYMENT_ID_LABEL,
    OWNED_KINDS,
    SDEP_API_VERSION,
    KubeError,
    event_object,
)
from seldon_serving.spec import KIND

KUBERNETES_VERSION = "1.30.0"
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_SERVER_META = ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp")

Key = tuple[str, str, str, str]  # (API group, kind, namespace, name): one object whatever version


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: mappings merge key by key, None deletes, anything else replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


@dataclass
class Call:
    verb: str  # apply, get, delete, list, patch_status, post_event, check_access
    kind: str
    name: str
    changed: bool = False  # apply/delete/patch_status: whether the stored object changed


@dataclass
class FakeKube:
    validate: bool = True
    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    applied: dict[Key, dict[str, Any]] = field(default_factory=dict)  # our manager's fields
    calls: list[Call] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    status_patches: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    crd_served: bool = True
    # (verb, kind) -> error raised by the next such call (then forgotten)
    failures: dict[tuple[str, str], KubeError] = field(default_factory=dict)
    _counter: Callable[[], int] = field(default_factory=lambda: itertools.count(1).__next__)

    # --- KubeApi ---------------------------------------------------------------------------------

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        kind, meta = str(obj.get("kind")), obj.get("metadata") or {}
        self._fail("apply", kind)
        self._check(obj)
        key = self._key(obj)
        new = copy.deepcopy(dict(obj))
        old = self.objects.get(key)
        if old is not None and self.applied.get(key) == new:
            self.calls.append(Call("apply", kind, meta["name"]))
            return copy.deepcopy(old)
        stored = copy.deepcopy(new)
        stored_meta = stored["metadata"]
        if old is None:
            stored_meta.update(uid=self._uid(), generation=1, creationTimestamp="2024-01-01T00:00:00Z")
        else:
            for name in _SERVER_META:
                if name in old["metadata"]:
                    stored_meta[name] = old["metadata"][name]
            if "status" in old:
                stored["status"] = old["status"]
            if _without_meta(self.applied[key]) != _without_meta(new):
                stored_meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        stored_meta["resourceVersion"] = self._version()
        self.objects[key], self.applied[key] = stored, new
        self.calls.append(Call("apply", kind, meta["name"], changed=True))
        return copy.deepcopy(stored)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(Call("get", kind, name))
        found = self.objects.get((_group(api_version), kind, namespace, name))
        if found is None:
            return None
        out = copy.deepcopy(found)
        out["apiVersion"] = api_version  # conversion None: only apiVersion is rewritten
        return out

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        self._fail("delete", kind)
        key = (_group(api_version), kind, namespace, name)
        gone = self._remove(key)
        self.calls.append(Call("delete", kind, name, changed=gone))
        return gone

    def list_owned(self, namespace: str, deployment_id: str) -> list[dict[str, Any]]:
        self.calls.append(Call("list", "*", deployment_id))
        return [
            copy.deepcopy(obj)
            for (_, kind, ns, _), obj in sorted(self.objects.items())
            if kind in OWNED_KINDS
            and ns == namespace
            and (obj["metadata"].get("labels") or {}).get(DEPLOYMENT_ID_LABEL) == deployment_id
        ]

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> bool:
        self._fail("patch_status", KIND)
        found = self.objects.get((_group(SDEP_API_VERSION), KIND, namespace, name))
        self.calls.append(Call("patch_status", KIND, name, changed=found is not None))
        if found is None:
            return False
        found["status"] = _merge_patch(found.get("status") or {}, dict(status))
        found["metadata"]["resourceVersion"] = self._version()
        self.status_patches.append((namespace, name, copy.deepcopy(dict(status))))
        return True

    def post_event(
        self, involved: Mapping[str, Any], reason: str, message: str, type: str = "Normal"
    ) -> None:
        self.calls.append(Call("post_event", "Event", reason))
        self.events.append(event_object(involved, reason, message, type))

    def check_access(self, namespaces: Sequence[str] | None) -> None:
        self.calls.append(Call("check_access", KIND, ",".join(namespaces or ["*"])))
        if not self.crd_served:
            raise KubeError(404, "seldondeployments.machinelearning.seldon.io is not served")

    # --- what a test does to the cluster ---------------------------------------------------------

    def create_sdep(self, manifest: Mapping[str, Any], namespace: str = "default") -> dict[str, Any]:
        """`kubectl create` of a SeldonDeployment (as written, any version); the body the
        operator is handed, read at the watched version."""
        doc = copy.deepcopy(dict(manifest))
        meta = doc.setdefault("metadata", {})
        meta.setdefault("name", (doc.get("spec") or {}).get("name"))
        meta["namespace"] = namespace
        meta.update(uid=self._uid(), generation=1, resourceVersion=self._version())
        self.objects[self._key(doc)] = doc
        return self.sdep(namespace, meta["name"])

    def update_sdep(
        self, namespace: str, name: str, change: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        """`kubectl edit`: `change` edits the stored manifest in place; generation moves."""
        doc = self.objects[(_group(SDEP_API_VERSION), KIND, namespace, name)]
        change(doc)
        doc["metadata"]["generation"] += 1
        doc["metadata"]["resourceVersion"] = self._version()
        return self.sdep(namespace, name)

    def sdep(self, namespace: str, name: str) -> dict[str, Any]:
        found = self.get(SDEP_API_VERSION, KIND, namespace, name)
        assert found is not None, f"no SeldonDeployment {namespace}/{name}"
        self.calls.pop()  # a test's look is not the operator's call
        return found

    def find(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return next(
            (
                copy.deepcopy(o)
                for (_, k, ns, n), o in self.objects.items()
                if (k, ns, n) == (kind, namespace, name)
            ),
            None,
        )

    def of_kind(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(o)
            for (_, k, ns, _), o in sorted(self.objects.items())
            if k == kind and (namespace is None or ns == namespace)
        ]

    def owned_by(self, uid: str) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(o)
            for _, o in sorted(self.objects.items())
            if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])
        ]

    def mark_available(self, namespace: str, name: str, available: int | None = None) -> dict[str, Any]:
        """The Deployment controller's work: the current generation observed, `available` (all,
        by default) replicas updated, ready and available.  The Deployment as a watch sees it."""
        key = next(k for k in self.objects if k[1:] == ("Deployment", namespace, name))
        deployment = self.objects[key]
        replicas = int(deployment["spec"].get("replicas", 1))
        count = replicas if available is None else available
        deployment["status"] = {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": count,
            "readyReplicas": count,
            "availableReplicas": count,
        }
        deployment["metadata"]["resourceVersion"] = self._version()
        return copy.deepcopy(deployment)

    def versions(self) -> dict[Key, tuple[str, int]]:
        """(resourceVersion, generation) of every object: equal before and after means nothing changed."""
        return {
            k: (o["metadata"]["resourceVersion"], o["metadata"].get("generation", 0))
            for k, o in self.objects.items()
        }

    def changed(self, verb: str = "apply") -> list[str]:
        return [f"{c.kind}/{c.name}" for c in self.calls if c.verb == verb and c.changed]

    # --- internals -----------------------------------------------------------------------------------

    def _key(self, obj: Mapping[str, Any]) -> Key:
        meta = obj["metadata"]
        return (_group(str(obj["apiVersion"])), str(obj["kind"]), str(meta["namespace"]), str(meta["name"]))

    def _uid(self) -> str:
        return f"00000000-0000-0000-0000-{self._counter():012d}"

    def _version(self) -> str:
        return str(self._counter())

    def _fail(self, verb: str, kind: str) -> None:
        error = self.failures.pop((verb, kind), None)
        if error is not None:
            raise error

    def _remove(self, key: Key) -> bool:
        """Delete `key`, then, as the garbage collector does, every object it owns."""
        gone = self.objects.pop(key, None)
        self.applied.pop(key, None)
        if gone is None:
            return False
        uid = gone["metadata"].get("uid")
        for other, obj in list(self.objects.items()):
            if any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or []):
                self._remove(other)
        return True

    def _check(self, obj: Mapping[str, Any]) -> None:
        """Refuse what a real API server would (422 Invalid), for the kinds render makes."""
        kind, meta = str(obj.get("kind")), obj.get("metadata") or {}
        if kind not in OWNED_KINDS or obj.get("apiVersion") != OWNED_KINDS[kind].api_version:
            raise KubeError(
                404, f"the server could not find the requested resource ({obj.get('apiVersion')} {kind})"
            )
        name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or "")
        problems = []
        pattern = _DNS_LABEL if kind == "Service" else _DNS_SUBDOMAIN
        if not pattern.match(name) or len(name) > (63 if kind == "Service" else 253):
            problems.append(f"metadata.name: Invalid value: {name!r}")
        if not _DNS_LABEL.match(namespace):
            problems.append(f"metadata.namespace: Invalid value: {namespace!r}")
        labels = dict(meta.get("labels") or {})
        template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
        labels.update(template.get("labels") or {})
        for label, value in labels.items():
            if len(str(value)) > 63 or not _LABEL_VALUE.match(str(value)):
                problems.append(f"metadata.labels: Invalid value: {label}={value!r}")
        for ref in meta.get("ownerReferences") or []:
            missing = [k for k in ("apiVersion", "kind", "name", "uid") if not ref.get(k)]
            if missing:
                problems.append(f"metadata.ownerReferences: missing {', '.join(missing)}")
        if self.validate:
            try:
                kubernetes_validate.validate(dict(obj), KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                problems.append(str(exc).splitlines()[0])
        if problems:
            raise KubeError(422, f"{kind} {name!r} is invalid: {'; '.join(problems)}")


def _without_meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "metadata"}
