"""The SeldonDeployment CRD: what the API server would make of it, checked without one.

Its openAPIV3Schema is run as a JSON schema over every manifest we know (the API server's
validation), the API server's pruning is replayed to show no version loses what the operator
reads, Kubernetes' structural-schema rules are checked, and its size is held under what
client-side `kubectl apply` can store.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from seldon_serving.deploy.k8s.crd import CRD_NAME, STORAGE_VERSION, crd
from seldon_serving.engine.plan import check_deployment
from seldon_serving.spec import (
    API_VERSIONS,
    GROUP,
    PROTOTYPES,
    ManifestError,
    convert,
    generate,
    parse_deployment,
)

MOCK = "seldonio/mock_classifier:1.0"
K8S_VERSIONS = sorted({"1.29.0", kubernetes_validate.latest_version()})
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_OPTIONS: dict[str, dict[str, Any]] = {
    "serve-simple": {"image": MOCK},
    "abtest": {"image_a": MOCK, "image_b": MOCK},
    "mab": {"image_a": MOCK, "image_b": MOCK},
    "outlier-detector": {"image": MOCK},
}


# --- what the API server does with the schema ------------------------------------------------


def _as_json_schema(node: Any) -> Any:
    """The OpenAPI schema as JSON Schema: `nullable` becomes a null type; `x-kubernetes-*`
    stay as annotations (JSON Schema ignores keywords it does not know)."""
    if isinstance(node, list):
        return [_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") and "type" in node:
        out["type"] = [node["type"], "null"]
    return out


def schema_errors(schema: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    """What the API server's validation says about `manifest` (after its pruning), one line each."""
    validator = jsonschema.Draft7Validator(_as_json_schema(schema))
    pruned = prune(manifest, schema)
    return sorted(
        f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(pruned)
    )


def prune(value: Any, schema: dict[str, Any], *, root: bool = True) -> Any:
    """The API server's pruning (KEP-2332): fields the schema does not declare are dropped
    unless `x-kubernetes-preserve-unknown-fields`; so are nulls of fields not `nullable`.
    At the root, apiVersion, kind and metadata are the server's own and always kept."""
    if isinstance(value, dict) and (schema.get("type") == "object" or root):
        properties: dict[str, Any] = schema.get("properties", {})
        additional = schema.get("additionalProperties")
        keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields") is True
        out: dict[str, Any] = {}
        for key, item in value.items():
            if root and key in ("apiVersion", "kind", "metadata"):
                out[key] = item
                continue
            sub = properties.get(key, additional if isinstance(additional, dict) else None)
            if sub is None:
                if keep_unknown:
                    out[key] = item
                continue
            if item is None and not sub.get("nullable"):
                continue
            out[key] = prune(item, sub, root=False)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(item, schema["items"], root=False) for item in value]
    return value


def structural_problems(node: Any, path: str = "", *, root: bool = True) -> list[str]:
    """Where `node` breaks Kubernetes' rules for a structural schema (apiextensions v1):
    a type everywhere (unless preserve-unknown-fields or int-or-string), no $ref, no
    `additionalProperties` beside `properties` or set to false, junctors holding only value
    validations, enum values of the node's type, and only `type: object` for metadata."""
    problems: list[str] = []
    if not isinstance(node, dict):
        return [f"{path or '<root>'}: not a schema"]
    where = path or "<root>"
    allowed_untyped = node.get("x-kubernetes-preserve-unknown-fields") is True or node.get(
        "x-kubernetes-int-or-string"
    )
    if "type" not in node and not allowed_untyped:
        problems.append(f"{where}: no type")
    if root and node.get("type") != "object":
        problems.append(f"{where}: the root must be an object")
    for banned in ("$ref", "definitions", "$defs", "uniqueItems", "patternProperties"):
        if node.get(banned):
            problems.append(f"{where}: {banned} is not allowed")
    if (
        "x-kubernetes-preserve-unknown-fields" in node
        and node["x-kubernetes-preserve-unknown-fields"] is not True
    ):
        problems.append(f"{where}: x-kubernetes-preserve-unknown-fields may only be true")
    if "properties" in node and "additionalProperties" in node:
        problems.append(f"{where}: properties and additionalProperties together")
    if node.get("additionalProperties") is False:
        problems.append(f"{where}: additionalProperties: false")
    for junctor in ("allOf", "anyOf", "oneOf", "not"):
        branches = node.get(junctor)
        for branch in branches if isinstance(branches, list) else [branches] if branches else []:
            for key in ("type", "description", "default", "additionalProperties", "nullable"):
                if key in branch:
                    problems.append(f"{where}.{junctor}: {key} inside a junctor")
    kinds: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "integer": int,
        "boolean": bool,
        "number": (int, float),
    }
    if node.get("type") in kinds:
        for value in node.get("enum", []):
            if not isinstance(value, kinds[node["type"]]):
                problems.append(f"{where}: enum value {value!r} is not a {node['type']}")
    for name, sub in (node.get("properties") or {}).items():
        child = f"{path}.{name}" if path else name
        if root and name == "metadata":
            if sub != {"type": "object"}:
                problems.append(f"{child}: only type: object (and name restrictions) is allowed")
            continue
        problems += structural_problems(sub, child, root=False)
    if isinstance(node.get("items"), dict):
        problems += structural_problems(node["items"], f"{path}[]", root=False)
    elif "items" in node:
        problems.append(f"{where}: items must be one schema")
    if node.get("type") == "array" and "items" not in node:
        problems.append(f"{where}: an array needs items")
    if isinstance(node.get("additionalProperties"), dict):
        problems += structural_problems(node["additionalProperties"], f"{path}{{}}", root=False)
    return problems


# --- manifests -------------------------------------------------------------------------------


def _deployments(doc: dict[str, Any]) -> list[dict[str, Any]]:
    items = doc["items"] if doc.get("kind") == "List" else [doc]
    return [item for item in items if item.get("kind") == "SeldonDeployment"]


def prototype_manifests() -> list[tuple[str, dict[str, Any]]]:
    """Each prototype, generated in v1alpha1 and v1alpha2 and converted to that version and
    every newer one (v1alpha1 cannot always hold v1alpha2's several pod templates)."""
    out = []
    versions = list(API_VERSIONS)
    for proto in PROTOTYPES:
        for generated in ("v1alpha1", "v1alpha2"):
            doc = generate(proto, f"my-{proto}", api_version=generated, **_OPTIONS[proto])
            for version in versions[versions.index(generated) :]:
                for sdep in _deployments(convert(doc, version)):
                    out.append((f"{proto}-{generated}-as-{version}", sdep))
    return out


def example_manifests() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(EXAMPLES.rglob("*")):
        if path.suffix not in (".yaml", ".yml", ".json"):
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict):
                for sdep in _deployments(doc):
                    out.append((str(path.relative_to(EXAMPLES)), sdep))
    return out


PROTOTYPE_MANIFESTS = prototype_manifests()
EXAMPLE_MANIFESTS = example_manifests()


def served_schemas() -> dict[str, dict[str, Any]]:
    return {v["name"]: v["schema"]["openAPIV3Schema"] for v in crd()["spec"]["versions"] if v["served"]}


# --- the CRD object ---------------------------------------------------------------------------


def test_the_crd_serves_every_version_and_stores_v1alpha2() -> None:
    obj = crd()
    spec = obj["spec"]
    assert obj["apiVersion"] == "apiextensions.k8s.io/v1"
    assert obj["metadata"]["name"] == CRD_NAME == "seldondeployments.machinelearning.seldon.io"
    assert spec["group"] == GROUP and spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": "SeldonDeployment",
        "listKind": "SeldonDeploymentList",
        "plural": "seldondeployments",
        "singular": "seldondeployment",
        "shortNames": ["sdep"],
    }
    assert [v["name"] for v in spec["versions"]] == ["v1alpha1", "v1alpha2", "v1alpha3", "v1"]
    assert all(v["served"] for v in spec["versions"])
    assert [v["name"] for v in spec["versions"] if v["storage"]] == [STORAGE_VERSION] == ["v1alpha2"]
    assert spec["conversion"] == {"strategy": "None"}
    for version in spec["versions"]:
        assert version["subresources"] == {"status": {}}
        columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
        assert columns["State"]["jsonPath"] == ".status.state"
        assert columns["Age"] == {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def test_one_schema_for_every_version() -> None:
    # With conversion None, a field one version's schema lacks is pruned when read through it.
    schemas = list(served_schemas().values())
    assert all(schema == schemas[0] for schema in schemas)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_the_crd_is_a_valid_kubernetes_object(version: str) -> None:
    kubernetes_validate.validate(crd(), version, strict=True)
    # (the check can fail: a field of the wrong type, or one CRDs do not have)
    for field, value in (("served", "yes"), ("stored", True)):
        broken = crd()
        broken["spec"]["versions"][0][field] = value
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, version, strict=True)


def test_the_schema_is_structural() -> None:
    for name, schema in served_schemas().items():
        assert structural_problems(schema) == [], name


def test_the_structural_check_sees_what_kubernetes_refuses() -> None:
    schema = copy.deepcopy(served_schemas()["v1alpha2"])
    spec = schema["properties"]["spec"]
    spec["properties"]["name"] = {"description": "no type"}
    spec["properties"]["extra"] = {"$ref": "#/definitions/X"}
    spec["properties"]["labels"] = {
        "type": "object",
        "properties": {},
        "additionalProperties": {"type": "string"},
    }
    schema["properties"]["metadata"] = {"type": "object", "properties": {"labels": {"type": "object"}}}
    problems = structural_problems(schema)
    assert "spec.name: no type" in problems
    assert "spec.extra: $ref is not allowed" in problems
    assert "spec.labels: properties and additionalProperties together" in problems
    assert any(p.startswith("metadata:") for p in problems)


def test_the_crd_fits_client_side_apply() -> None:
    # kubectl apply (client side) copies the object into one annotation; all annotations of
    # an object together may hold 256 KiB.
    last_applied = json.dumps(crd(), separators=(",", ":")) + "\n"
    assert len(last_applied.encode()) < 256 * 1024
    # and the printed YAML, what `kubectl apply -f -` reads, is the same object
    from seldon_serving.deploy.k8s.render import to_yaml

    assert yaml.safe_load(to_yaml([crd()])) == crd()


# --- the schema accepts every manifest we know ---------------------------------------------------


@pytest.mark.parametrize(("label", "manifest"), PROTOTYPE_MANIFESTS, ids=[m[0] for m in PROTOTYPE_MANIFESTS])
def test_the_schema_accepts_every_prototype_in_every_version(label: str, manifest: dict[str, Any]) -> None:
    for version, schema in served_schemas().items():
        assert schema_errors(schema, manifest) == [], f"{label} read as {version}"


def test_examples_are_found() -> None:
    assert len(EXAMPLE_MANIFESTS) >= 8  # the seed's four, in v1alpha1 and v1alpha2


@pytest.mark.parametrize(("label", "manifest"), EXAMPLE_MANIFESTS, ids=[m[0] for m in EXAMPLE_MANIFESTS])
def test_the_schema_accepts_every_example(label: str, manifest: dict[str, Any]) -> None:
    for version, schema in served_schemas().items():
        assert schema_errors(schema, manifest) == [], f"{label} read as {version}"


def _with_status() -> dict[str, Any]:
    doc = _deployments(generate("serve-simple", "mymodel", image=MOCK))[0]
    doc["metadata"]["annotations"] = {
        "kopf.zalando.org/last-handled-configuration": '{"spec": {}}',
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
    }
    doc["metadata"]["finalizers"] = ["kopf.zalando.org/KopfFinalizerMarker"]
    doc["status"] = {
        "state": "Available",
        "description": "",
        "predictorStatus": [
            {"name": "mymodel-mymodel-7cd068f", "replicas": 1, "replicasAvailable": 1},
        ],
        "kopf": {"progress": {"reconcile": {"started": "2019-01-01T00:00:00Z", "retries": 0}}},
    }
    return doc


def test_status_and_kopf_bookkeeping_survive() -> None:
    doc = _with_status()
    for schema in served_schemas().values():
        assert schema_errors(schema, doc) == []
        assert prune(doc, schema) == doc


def test_a_status_the_operator_never_writes_is_refused() -> None:
    doc = _with_status()
    doc["status"]["state"] = "Sleeping"
    assert schema_errors(served_schemas()["v1alpha2"], doc) == [
        "status.state: 'Sleeping' is not one of ['Creating', 'Available', 'Failed', 'NotReady']"
    ]


# --- bad manifests: what the schema refuses, what only the operator can -----------------------


def _base() -> dict[str, Any]:
    """The seed's A/B test: a RANDOM_ABTEST over two models (valid as it is)."""
    return _deployments(generate("abtest", "myabtest", image_a=MOCK, image_b=MOCK))[0]


def _edit(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set (or, with KeyError, delete) the field at a dotted path; numbers index lists."""

    def change(doc: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target: Any = doc
        for key in parents:
            target = target[key]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value

    return change


GRAPH = "spec.predictors.0.graph"
PREDICTOR = "spec.predictors.0"

# The schema sees these: a value outside its enum or range, a missing required field.
SCHEMA_REFUSES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("unknown unit type", _edit(f"{GRAPH}.children.0.type", "ROUTERX"), f"{GRAPH}.children.0.type"),
    ("unknown endpoint type", _edit(f"{GRAPH}.children.0.endpoint.type", "SOAP"), "endpoint.type"),
    ("unknown parameter type", _edit(f"{GRAPH}.parameters.0.type", "LONG"), f"{GRAPH}.parameters.0.type"),
    ("parameter without value", _edit(f"{GRAPH}.parameters.0.value", KeyError), f"{GRAPH}.parameters.0"),
    ("unknown method", _edit(f"{GRAPH}.children.0.methods", ["PREDICT"]), f"{GRAPH}.children.0.methods.0"),
    ("negative replicas", _edit(f"{PREDICTOR}.replicas", -1), f"{PREDICTOR}.replicas"),
    ("replicas not a number", _edit(f"{PREDICTOR}.replicas", "many"), f"{PREDICTOR}.replicas"),
    ("predictor without name", _edit(f"{PREDICTOR}.name", KeyError), PREDICTOR),
    ("predictor without graph", _edit(f"{PREDICTOR}.graph", KeyError), PREDICTOR),
    ("node without name", _edit(f"{GRAPH}.children.1.name", KeyError), f"{GRAPH}.children.1"),
    ("no predictors", _edit("spec.predictors", []), "spec.predictors"),
    ("port out of range", _edit(f"{GRAPH}.children.0.endpoint.service_port", 70000), "service_port"),
    ("unknown protocol", _edit("spec.protocol", "soap"), "spec.protocol"),
]

# Rules across fields (or against the pods): only the operator's validation can see them.
OPERATOR_REFUSES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("dangling child: no container", _edit(f"{GRAPH}.children.0.name", "nobody"), "has no container"),
    (
        # (a node with no type at all is a MODEL, as Seldon defaults it)
        "node of unknown type",
        _edit(f"{GRAPH}.children.0.type", "UNKNOWN_TYPE"),
        "is of type UNKNOWN_TYPE with no implementation or methods",
    ),
    (
        "RANDOM_ABTEST with one child",
        lambda d: d["spec"]["predictors"][0]["graph"]["children"].pop(),
        "exactly 2 children",
    ),
    ("traffic not summing to 100", _edit(f"{PREDICTOR}.traffic", 60), "sums to 60"),
    ("FLOAT parameter not a float", _edit(f"{GRAPH}.parameters.0.value", "half"), "is not a FLOAT"),
    ("unknown implementation", _edit(f"{GRAPH}.implementation", "RANDOM_ABTESTX"), "implementation"),
]


@pytest.mark.parametrize(
    ("change", "where"), [c[1:] for c in SCHEMA_REFUSES], ids=[c[0] for c in SCHEMA_REFUSES]
)
def test_the_schema_refuses_what_it_can_see(change: Callable[[dict[str, Any]], None], where: str) -> None:
    doc = _base()
    assert schema_errors(served_schemas()["v1alpha2"], doc) == []
    change(doc)
    errors = schema_errors(served_schemas()["v1alpha2"], doc)
    assert errors, "the schema let it through"
    assert any(where in error for error in errors), errors
    # and our own checks refuse it too: kubectl and `seldon validate` agree
    with pytest.raises(ManifestError):
        check_deployment(parse_deployment(doc))


@pytest.mark.parametrize(
    ("change", "words"), [c[1:] for c in OPERATOR_REFUSES], ids=[c[0] for c in OPERATOR_REFUSES]
)
def test_cross_field_rules_are_left_to_the_operator(
    change: Callable[[dict[str, Any]], None], words: str
) -> None:
    doc = _base()
    change(doc)
    assert schema_errors(served_schemas()["v1alpha2"], doc) == []
    with pytest.raises(ManifestError) as info:
        check_deployment(parse_deployment(doc))
    assert words in str(info.value)


# --- pruning: a manifest written in one version and read in another ------------------------------


def _read_as(manifest: dict[str, Any], version: str, schema: dict[str, Any]) -> dict[str, Any]:
    """What a client reading `version` gets back: conversion None rewrites apiVersion only,
    then the object is pruned with that version's schema."""
    as_stored = copy.deepcopy(manifest)
    as_stored["apiVersion"] = f"{GROUP}/{version}"
    return prune(as_stored, schema)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("label", "manifest"),
    PROTOTYPE_MANIFESTS + EXAMPLE_MANIFESTS,
    ids=[m[0] for m in PROTOTYPE_MANIFESTS + EXAMPLE_MANIFESTS],
)
def test_no_version_loses_what_the_operator_reads(label: str, manifest: dict[str, Any]) -> None:
    original = parse_deployment(manifest).to_dict()
    for version, schema in served_schemas().items():
        read = _read_as(manifest, version, schema)
        assert {**read, "apiVersion": manifest["apiVersion"]} == manifest, f"{label} read as {version}"
        model = parse_deployment(read).to_dict()
        assert {**model, "apiVersion": original["apiVersion"]} == original
        if manifest["apiVersion"].endswith("/v1alpha1"):
            assert all("componentSpec" in p for p in read["spec"]["predictors"])


def test_pruning_drops_what_a_schema_does_not_declare() -> None:
    # The round trip above can fail: a schema without componentSpec loses it.
    schema = copy.deepcopy(served_schemas()["v1alpha2"])
    predictor = schema["properties"]["spec"]["properties"]["predictors"]["items"]
    del predictor["properties"]["componentSpec"]
    del predictor["x-kubernetes-preserve-unknown-fields"]
    v1alpha1 = _deployments(generate("serve-simple", "mymodel", image=MOCK, api_version="v1alpha1"))[0]
    read = _read_as(v1alpha1, "v1alpha2", schema)
    assert "componentSpec" not in read["spec"]["predictors"][0]
    # and nulls of fields that are not nullable go too, as the API server drops them
    v1alpha1["spec"]["predictors"][0]["graph"]["endpoint"] = None
    assert (
        "endpoint"
        not in _read_as(v1alpha1, "v1alpha1", served_schemas()["v1alpha1"])["spec"]["predictors"][0]["graph"]
    )


def test_every_version_is_in_the_crd() -> None:
    assert set(served_schemas()) == set(API_VERSIONS)
