"""The CRD's openAPIV3Schema, derived from the models so the two cannot drift apart.

Kubernetes wants a *structural* schema: no $ref, no anyOf-with-null, no recursion, a type on
every node (or `x-kubernetes-preserve-unknown-fields`), and that extension wherever unknown keys
must survive (we keep them all). Pod templates are passed through untyped: the API server
already knows PodSpec, and their schemas would make the CRD too big for `kubectl apply`.

Optional fields are not marked `nullable`: the API server drops a null it is not allowed to
keep before validating (PruneNonNullableNullsWithoutDefaults), so `x: null` reads as "x not
given", which is what None means in the models, and no enum has to say whether null is one
of its values (validators disagree about nullable enums).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from seldon_serving.spec.models import SeldonDeployment

_OPAQUE = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
# Graph nodes nest; the schema spells out this many levels and accepts anything deeper.
GRAPH_DEPTH = 6
_UNTYPED_DEFS = frozenset({"PodTemplate", "SeldonPodSpec"})
_DROP = frozenset({"title", "default", "$defs", "description"})


class _Converter:
    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        self.stack: Counter[str] = Counter()

    def ref(self, ref: str) -> dict[str, Any]:
        name = ref.rsplit("/", 1)[-1]
        if name in _UNTYPED_DEFS or self.stack[name] >= GRAPH_DEPTH:
            return dict(_OPAQUE)
        self.stack[name] += 1
        try:
            return self.convert(self.defs[name])
        finally:
            self.stack[name] -= 1

    def convert(self, schema: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in schema:
            return self.ref(schema["$ref"])
        if "anyOf" in schema:
            options = [s for s in schema["anyOf"] if s.get("type") != "null"]
            if len(options) == 1:
                return self.convert(options[0])
            converted = [self.convert(option) for option in options]
            if all(c.get("type") == "object" for c in converted):
                return dict(_OPAQUE)
            # Several kinds of value (a string or a number...): no single type fits, so the
            # node is left untyped, which a structural schema allows only with this marker.
            return {"x-kubernetes-preserve-unknown-fields": True}
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key in _DROP:
                continue
            if key == "properties":
                out[key] = {name: self.convert(sub) for name, sub in value.items()}
            elif key == "items":
                out[key] = self.convert(value)
            elif key == "additionalProperties":
                if value is True or value == {}:
                    out["x-kubernetes-preserve-unknown-fields"] = True
                elif isinstance(value, dict):
                    out[key] = self.convert(value)
            elif key == "const":
                out["enum"] = [value]
            else:
                out[key] = value
        if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
            out["x-kubernetes-preserve-unknown-fields"] = True
        if "type" in out:  # type first: the printed CRD reads top-down
            out = {"type": out.pop("type"), **out}
        return out


def crd_schema() -> dict[str, Any]:
    """`spec.versions[].schema.openAPIV3Schema` for the SeldonDeployment CRD."""
    raw = SeldonDeployment.model_json_schema(by_alias=True, mode="validation")
    schema = _Converter(raw.get("$defs", {})).convert(raw)
    # The API server owns ObjectMeta; a CRD may only say it is an object.
    schema["properties"]["metadata"] = {"type": "object"}
    return schema
