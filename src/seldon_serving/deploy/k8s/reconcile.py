"""What the operator does for one SeldonDeployment, as plain functions over `KubeApi` (no kopf):
read the body the API server hands over whatever version it was written in, render it, apply
every object, delete what the new render no longer holds, and write `status` back.
Everything goes through `KubeApi`, so the same code runs against a cluster and the tests' double.

Status follows Seldon (SELDON-REFERENCE 5.5): `state` Creating until every Deployment of it has
rolled out and has all its replicas available, then Available; Failed with the one sentence
`seldon validate` prints when the manifest is refused (plus a Warning Event saying the same).
A refused update leaves the objects of the last good version running.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from seldon_serving.deploy.k8s import names
from seldon_serving.deploy.k8s.front import register_with_front, unregister_from_front
from seldon_serving.deploy.k8s.kube import SDEP_API_VERSION, KubeApi, KubeError
from seldon_serving.deploy.k8s.render import RenderOptions, render_manifest
from seldon_serving.spec import API_VERSIONS, GROUP, KIND, DeploymentState, ManifestError, convert
from seldon_serving.state import open_store

INVALID_MANIFEST = "InvalidManifest"  # Event reason: render refused the manifest
APPLY_REFUSED = "ApplyRefused"  # Event reason: the API server refused an object of it


def _plain(value: Any) -> Any:
    """A deep copy made of dicts and lists (kopf hands bodies over as read-only views)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return copy.deepcopy(value)


def _predictors(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = doc.get("spec")
    predictors = spec.get("predictors") if isinstance(spec, Mapping) else None
    return [p for p in predictors if isinstance(p, Mapping)] if isinstance(predictors, list) else []


def normalise(body: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest to render from a SeldonDeployment as the API server hands it over.

    With conversion None the server only rewrites apiVersion, so an object written as v1alpha1
    and read at v1alpha2 still holds `componentSpec`: the shape says which version it is.
    v1alpha1-shaped bodies (componentSpec, no componentSpecs) are converted to v1alpha2; a
    v1alpha2+ body read at v1alpha1 just gets v1alpha2's apiVersion.  Metadata is kept (its
    name and namespace name the objects); status and managedFields are dropped.
    """
    doc: dict[str, Any] = _plain(body)
    doc.pop("status", None)
    if isinstance(doc.get("metadata"), dict):
        doc["metadata"].pop("managedFields", None)
    predictors = _predictors(doc)
    single = any("componentSpec" in p for p in predictors)
    listed = any("componentSpecs" in p for p in predictors)
    if single and not listed:
        doc["apiVersion"] = API_VERSIONS["v1alpha1"]
        return convert(doc, "v1alpha2")
    if doc.get("apiVersion") == API_VERSIONS["v1alpha1"] and listed:
        doc["apiVersion"] = API_VERSIONS["v1alpha2"]
    return doc


# --- who is who -------------------------------------------------------------------------------------


def _meta(body: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = body.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def deployment_id(body: Mapping[str, Any]) -> str:
    """The `seldon-deployment-id` label value of everything a SeldonDeployment makes (as render
    sets it: metadata.name, else spec.name, hashed when longer than a label takes)."""
    spec = body.get("spec")
    name = _meta(body).get("name") or (spec.get("name") if isinstance(spec, Mapping) else None) or ""
    return names.label_value(str(name))


def _namespace(body: Mapping[str, Any]) -> str:
    return str(_meta(body).get("namespace") or "default")


def _owned_by(obj: Mapping[str, Any], uid: str | None) -> bool:
    """Whether `obj` is this SeldonDeployment's: its owner reference carries the uid (a name
    alone is not enough: a deleted and re-created SeldonDeployment has a new uid)."""
    refs = [r for r in _meta(obj).get("ownerReferences") or [] if isinstance(r, Mapping)]
    if uid is None:  # rendered without an owner (no uid known): only unowned objects match
        return not refs
    return any(r.get("uid") == uid for r in refs)


def seldon_owner(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """(name, uid) of the SeldonDeployment controlling `obj`, if one does."""
    for ref in _meta(obj).get("ownerReferences") or []:
        if not isinstance(ref, Mapping) or ref.get("kind") != KIND:
            continue
        if str(ref.get("apiVersion", "")).startswith(f"{GROUP}/") and ref.get("name") and ref.get("uid"):
            return str(ref["name"]), str(ref["uid"])
    return None


def desired(body: Mapping[str, Any], options: RenderOptions) -> list[dict[str, Any]]:
    """Every object the SeldonDeployment should have, owned by its uid; ManifestError (the
    sentence `seldon validate` prints, without a file name) when it is refused."""
    uid = _meta(body).get("uid")
    owned = dataclasses.replace(options, owner_uid=str(uid) if uid else None)
    return render_manifest(normalise(body), _namespace(body), owned)


# --- status -------------------------------------------------------------------------------------------


def _rolled_out(deployment: Mapping[str, Any], replicas: int) -> bool:
    """Seen by the Deployment controller at its current generation, every replica updated to
    the current pod template and available: a rolling update in flight is not done."""
    status = deployment.get("status") or {}
    generation = _meta(deployment).get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and (observed is None or int(observed) < int(generation)):
        return False
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    return updated >= replicas and available >= replicas


def _replicas(deployment: Mapping[str, Any]) -> int:
    spec = deployment.get("spec") or {}
    value = spec.get("replicas")
    return 1 if value is None else int(value)  # Kubernetes' default


def status_of(
    live: Iterable[Mapping[str, Any]], wanted: Iterable[Mapping[str, Any]], uid: str | None
) -> dict[str, Any]:
    """The status for the Deployments `wanted` (rendered) given the objects `live` (listed):
    predictorStatus per Deployment, named as in Kubernetes, with the live spec's replicas
    (an autoscaler may have changed them) and how many are available."""
    by_name = {
        str(_meta(o).get("name")): o for o in live if o.get("kind") == "Deployment" and _owned_by(o, uid)
    }
    entries: list[dict[str, Any]] = []
    ready = True
    for deployment in wanted:
        if deployment.get("kind") != "Deployment":
            continue
        name = str(_meta(deployment).get("name"))
        found = by_name.get(name)
        replicas = _replicas(found if found is not None else deployment)
        available = int(((found or {}).get("status") or {}).get("availableReplicas") or 0)
        entries.append({"name": name, "replicas": replicas, "replicasAvailable": available})
        ready = ready and found is not None and _rolled_out(found, replicas)
    state = DeploymentState.AVAILABLE if ready else DeploymentState.CREATING
    return {"state": str(state), "description": None, "predictorStatus": entries}


def _write_status(api: KubeApi, body: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Patch the status only when it differs (a no-op reconcile writes nothing); True if written."""
    current = body.get("status")
    current = current if isinstance(current, Mapping) else {}
    if all(_plain(current.get(key)) == value for key, value in status.items()):
        return False
    api.patch_status(_namespace(body), str(_meta(body).get("name")), status)
    return True


def _fail(api: KubeApi, body: Mapping[str, Any], reason: str, sentence: str) -> dict[str, Any]:
    """Status Failed with `sentence`, and one Warning Event saying it (not again when the
    status already says it: a restarted operator does not repeat itself)."""
    status = {"state": str(DeploymentState.FAILED), "description": sentence}
    if _write_status(api, body, status):
        api.post_event(body, reason, sentence, "Warning")
    return status


# --- what the handlers call ------------------------------------------------------------------------


def _settle(api: KubeApi, body: Mapping[str, Any], objects: list[dict[str, Any]]) -> dict[str, Any]:
    """Status from what the SeldonDeployment owns now, written back; then delete what the render
    no longer holds.  Deployments go only once every wanted one is available: an image change
    renames a Deployment (its name hashes the images, as Seldon's did), and the old one serves
    through the same Services until its successor can."""
    namespace, uid = _namespace(body), _meta(body).get("uid")
    owned = [o for o in api.list_owned(namespace, deployment_id(body)) if _owned_by(o, uid)]
    status = status_of(owned, objects, uid)
    available = status["state"] == DeploymentState.AVAILABLE
    keep = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for obj in owned:
        kind, name = str(obj.get("kind")), str(_meta(obj).get("name"))
        if (kind, name) in keep or (kind == "Deployment" and not available):
            continue
        api.delete(str(obj.get("apiVersion")), kind, namespace, name)
    _write_status(api, body, status)
    return status


def reconcile(api: KubeApi, body: Mapping[str, Any], options: RenderOptions) -> dict[str, Any]:
    """Make the cluster hold what `body` describes; returns the status written.

    Applies every rendered object (an identical object is a no-op for the API server, a changed
    pod template a rolling update), then deletes the objects of this SeldonDeployment (same
    label, same owner uid) that the render no longer holds, e.g. a removed predictor (its
    Deployments once the wanted ones are available, see `_settle`).  KubeErrors other than a
    refused object propagate, for the caller to retry.
    """
    try:
        objects = desired(body, options)
    except ManifestError as exc:
        return _fail(api, body, INVALID_MANIFEST, str(exc))
    for obj in objects:
        try:
            api.apply(obj)
        except KubeError as exc:
            if not exc.refused:
                raise
            meta = obj["metadata"]
            sentence = f"the API server refused {obj['kind']} {meta['name']}: {exc.message}"
            return _fail(api, body, APPLY_REFUSED, sentence)
    if options.front_end:
        sync_front(body, options)
    return _settle(api, body, objects)


def sync_front(body: Mapping[str, Any], options: RenderOptions, *, deleted: bool = False) -> None:
    """Store the SeldonDeployment for the install's OAuth front end (in the shared store it
    reads), or remove it when deleted.  A store that cannot be reached raises: the handler is
    retried, as for any other object the operator could not write."""
    name, namespace = str(_meta(body).get("name") or ""), _namespace(body)
    store = open_store(options.store())
    try:
        if deleted:
            unregister_from_front(store, namespace, name)
        else:
            register_with_front(store, normalise(body), namespace, name)
    finally:
        store.close()


def refresh_status(api: KubeApi, body: Mapping[str, Any], options: RenderOptions) -> dict[str, Any] | None:
    """Recompute the status from the live Deployments (one of them changed), and delete the
    Deployments replaced once their successors are available; None, and nothing written, when
    the manifest is refused (its Failed status stays)."""
    try:
        objects = desired(body, options)
    except ManifestError:
        return None
    current = body.get("status")
    if isinstance(current, Mapping) and current.get("state") == DeploymentState.FAILED:
        return None  # refused by the API server: only a change of the manifest (reconcile) clears it
    return _settle(api, body, objects)


def on_child_event(
    api: KubeApi, child: Mapping[str, Any], event_type: str | None, options: RenderOptions
) -> dict[str, Any] | None:
    """A Deployment labelled seldon-deployment-id changed: refresh its owner's status, or, when
    it was deleted while its SeldonDeployment lives on, reconcile (which re-creates it if still
    wanted).  None when it has no live SeldonDeployment owner (e.g. garbage collection)."""
    owner = seldon_owner(child)
    if owner is None:
        return None
    namespace = str(_meta(child).get("namespace") or "default")
    body = api.get(SDEP_API_VERSION, KIND, namespace, owner[0])
    if body is None or _meta(body).get("uid") != owner[1] or _meta(body).get("deletionTimestamp"):
        return None
    if event_type == "DELETED":
        return reconcile(api, body, options)
    return refresh_status(api, body, options)


def cleanup(api: KubeApi, body: Mapping[str, Any]) -> list[str]:
    """Delete everything this SeldonDeployment made (its label and its uid as owner); the names
    deleted, as `kind/name`.  The API server's garbage collector does the same through owner
    references, even with no operator running; this only makes it immediate."""
    namespace, uid = _namespace(body), _meta(body).get("uid")
    deleted: list[str] = []
    for obj in api.list_owned(namespace, deployment_id(body)):
        if not _owned_by(obj, uid):
            continue
        name = str(_meta(obj).get("name"))
        if api.delete(str(obj.get("apiVersion")), str(obj.get("kind")), namespace, name):
            deleted.append(f"{obj.get('kind')}/{name}")
    return deleted


__all__ = [
    "APPLY_REFUSED",
    "INVALID_MANIFEST",
    "cleanup",
    "deployment_id",
    "desired",
    "normalise",
    "on_child_event",
    "reconcile",
    "refresh_status",
    "seldon_owner",
    "status_of",
    "sync_front",
]
