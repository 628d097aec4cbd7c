"""Moving manifests between API versions (Seldon's docs/v1alpha2_update.md, done by a program).

v1alpha1 keeps all of a predictor's containers in one pod template, `componentSpec`;
v1alpha2 and v1 hold a list, `componentSpecs`, each item its own Deployment. v1 is v1alpha2
plus optional fields, so between those two only apiVersion changes.
Works on plain dicts so that every field the models do not know survives untouched.
"""

from __future__ import annotations

import copy
from typing import Any

from seldon_serving.spec.enums import API_VERSIONS, GROUP, KIND
from seldon_serving.spec.errors import ManifestError, join_path

_POD_TEMPLATE_KEYS = frozenset({"metadata", "spec"})


def _short_version(to: str) -> str:
    version = to.removeprefix(f"{GROUP}/")
    if version not in API_VERSIONS:
        raise ManifestError("", f"cannot convert to {to!r}: choose one of {', '.join(API_VERSIONS)}")
    return version


def _replace_key(mapping: dict[str, Any], old: str, new: str, value: Any) -> dict[str, Any]:
    """`mapping` with `old` renamed to `new` (same position, so written YAML reads the same)."""
    return {(new if key == old else key): (value if key == old else item) for key, item in mapping.items()}


def _split(template: Any) -> list[Any]:
    """One template per container, each keeping the pod-level settings (volumes, secrets...)."""
    spec = template.get("spec") if isinstance(template, dict) else None
    containers = spec.get("containers") if isinstance(spec, dict) else None
    if not isinstance(containers, list) or len(containers) <= 1:
        return [template]
    pieces = []
    for container in containers:
        piece = copy.deepcopy(template)
        piece["spec"]["containers"] = [copy.deepcopy(container)]
        pieces.append(piece)
    return pieces


def _pod_settings(template: dict[str, Any]) -> dict[str, Any]:
    """Everything of a template except its containers: what must agree to merge templates."""
    spec = template.get("spec")
    rest = (
        {key: value for key, value in spec.items() if key != "containers"} if isinstance(spec, dict) else spec
    )
    return {"metadata": template.get("metadata"), "spec": rest}


def _difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    if a["metadata"] != b["metadata"]:
        return "metadata"
    spec_a, spec_b = a["spec"] or {}, b["spec"] or {}
    for key in [*spec_a, *(k for k in spec_b if k not in spec_a)]:
        if spec_a.get(key) != spec_b.get(key):
            return f"spec.{key}"
    return "spec"


def _merge(templates: list[Any], path: str) -> Any:
    """The one v1alpha1 pod template equivalent to v1alpha2's list, or ManifestError saying why not."""
    for j, template in enumerate(templates):
        where = join_path(path, j)
        if not isinstance(template, dict):
            raise ManifestError(where, "expected a pod template mapping")
        extra = sorted(set(template) - _POD_TEMPLATE_KEYS)
        if extra:
            raise ManifestError(
                join_path(where, extra[0]),
                f"v1alpha1 has no {extra[0]} (one pod template per predictor); remove it to convert",
            )
    if len(templates) == 1:
        return templates[0]
    first = _pod_settings(templates[0])
    for j, template in enumerate(templates[1:], start=1):
        settings = _pod_settings(template)
        if settings != first:
            key = _difference(first, settings)
            raise ManifestError(
                join_path(path, j, key),
                f"differs from componentSpecs[0].{key}, so the {len(templates)} pod templates cannot "
                "become v1alpha1's single componentSpec; make the pod settings agree or keep v1alpha2",
            )
    merged = copy.deepcopy(templates[0])
    merged.setdefault("spec", {})["containers"] = [
        copy.deepcopy(c) for t in templates for c in (t.get("spec") or {}).get("containers") or []
    ]
    return merged


def _convert_predictor(predictor: Any, i: int, old: str, new: str, split: bool) -> Any:
    if not isinstance(predictor, dict):
        return predictor
    path = join_path("spec", "predictors", i)
    if old == "v1alpha1" and new != "v1alpha1" and "componentSpec" in predictor:
        template = predictor["componentSpec"]
        templates = _split(template) if split else [template]
        return _replace_key(predictor, "componentSpec", "componentSpecs", templates)
    if old != "v1alpha1" and new == "v1alpha1" and "componentSpecs" in predictor:
        templates = predictor["componentSpecs"] or []
        if not isinstance(templates, list):
            raise ManifestError(join_path(path, "componentSpecs"), "expected a list of pod templates")
        if not templates:
            return {key: value for key, value in predictor.items() if key != "componentSpecs"}
        merged = _merge(templates, join_path(path, "componentSpecs"))
        return _replace_key(predictor, "componentSpecs", "componentSpec", merged)
    return predictor


def _convert_deployment(doc: dict[str, Any], new: str, split: bool) -> dict[str, Any]:
    api_version = doc.get("apiVersion")
    old = api_version.removeprefix(f"{GROUP}/") if isinstance(api_version, str) else ""
    if api_version != API_VERSIONS.get(old):
        known = ", ".join(API_VERSIONS.values())
        raise ManifestError("apiVersion", f"{api_version!r} is not one of {known}")
    out = copy.deepcopy(doc)
    out["apiVersion"] = API_VERSIONS[new]
    spec = out.get("spec")
    predictors = spec.get("predictors") if isinstance(spec, dict) else None
    if isinstance(spec, dict) and isinstance(predictors, list):
        spec["predictors"] = [_convert_predictor(p, i, old, new, split) for i, p in enumerate(predictors)]
    return out


def convert(doc: dict[str, Any], to: str, *, split: bool = False) -> dict[str, Any]:
    """A converted copy of a SeldonDeployment (or of every SeldonDeployment in a `kind: List`).

    `to` is "v1alpha1", "v1alpha2" or "v1" (or the full apiVersion). v1alpha1 -> newer wraps
    `componentSpec` into a one-item `componentSpecs` (with `split=True`, one template per
    container). Newer -> v1alpha1 needs one template, or templates whose pod settings agree
    (their containers are then merged), and no hpaSpec; otherwise ManifestError says why.
    The input is never modified.
    """
    new = _short_version(to)
    if not isinstance(doc, dict):
        raise ManifestError("", "expected a SeldonDeployment or List mapping")
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        out = copy.deepcopy(doc)
        items = []
        for i, item in enumerate(doc["items"]):
            if isinstance(item, dict) and item.get("kind") == KIND:
                try:
                    items.append(_convert_deployment(item, new, split))
                except ManifestError as exc:
                    raise exc.located(context=f"items[{i}]") from None
            else:
                items.append(copy.deepcopy(item))
        out["items"] = items
        return out
    if kind != KIND:
        raise ManifestError("kind", f"{kind!r} is not a SeldonDeployment or a List of them")
    return _convert_deployment(doc, new, split)
