"""Generated manifests: valid ones load, validate and convert round trip; broken ones are refused
with a message that names the broken field."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_strategies import deployments

from seldon_serving.spec import ManifestError, convert, load_documents, validate

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _load(doc: dict[str, Any], as_json: bool = True) -> Any:
    text = orjson.dumps(doc) if as_json else yaml.dump(doc, Dumper=_DUMPER, sort_keys=False)
    (sdep,) = load_documents(text, filename="gen.yaml").deployments
    return sdep


@FAST
@given(deployments(), st.booleans())
def test_valid_manifests_load_validate_and_echo_unchanged(doc: dict[str, Any], as_json: bool) -> None:
    sdep = _load(doc, as_json)
    validate(sdep)
    assert sdep.to_dict() == doc


@FAST
@given(
    deployments(api_version="machinelearning.seldon.io/v1alpha1"),
    st.sampled_from(["v1alpha2", "v1alpha3", "v1"]),
    st.booleans(),
)
def test_v1alpha1_upgrade_round_trip(doc: dict[str, Any], to: str, split: bool) -> None:
    upgraded = convert(doc, to, split=split)
    validate(_load(upgraded))
    assert convert(upgraded, "v1alpha1") == doc


@FAST
@given(deployments(api_version="machinelearning.seldon.io/v1alpha2"))
def test_v1alpha2_conversions(doc: dict[str, Any]) -> None:
    assert convert(convert(doc, "v1"), "v1alpha2") == doc
    try:
        old = convert(doc, "v1alpha1")
    except ManifestError as exc:
        # only several pod templates that disagree can stop a downgrade; the error points at one
        assert exc.path.startswith("spec.predictors[") and ".componentSpecs[" in exc.path
        return
    validate(_load(old))
    singles = all(len(p.get("componentSpecs", [])) <= 1 for p in doc["spec"]["predictors"])
    if singles:
        assert convert(old, "v1alpha2") == doc


# --- broken manifests ------------------------------------------------------------------------------


def _nodes(unit: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    out = [(path, unit)]
    for i, child in enumerate(unit.get("children") or []):
        out += _nodes(child, f"{path}.children[{i}]")
    return out


def _templates(predictor: dict[str, Any]) -> list[dict[str, Any]]:
    if "componentSpec" in predictor:
        return [predictor["componentSpec"]]
    return predictor.get("componentSpecs", [])


def _backed(predictor: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Nodes whose only backing is a container (no built-in implementation, no remote endpoint)."""
    names = {c["name"] for t in _templates(predictor) for c in t["spec"]["containers"]}
    return [
        (path, node)
        for path, node in _nodes(predictor["graph"], "graph")
        if node["name"] in names
        and "implementation" not in node
        and "service_host" not in node.get("endpoint", {})
    ]


MUTATIONS = [
    "bad_type",
    "bad_implementation",
    "bad_endpoint",
    "negative_replicas",
    "bad_parameter",
    "drop_container",
    "duplicate_node",
    "traffic",
    "bad_name",
    "bad_api_version",
]


@st.composite
def broken(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """(an invalid manifest, the path its error must name)."""
    doc = copy.deepcopy(draw(deployments()))
    mutation = draw(st.sampled_from(MUTATIONS))
    i = draw(st.integers(0, len(doc["spec"]["predictors"]) - 1))
    predictor = doc["spec"]["predictors"][i]
    base = f"spec.predictors[{i}]"
    nodes = _nodes(predictor["graph"], "graph")
    path, node = draw(st.sampled_from(nodes))
    match mutation:
        case "bad_type":
            node["type"] = draw(st.sampled_from(["ROUTERX", "model", "", "MODELS"]))
            return doc, f"{base}.{path}.type"
        case "bad_implementation":
            node["implementation"] = draw(st.sampled_from(["MAGIC", "random_abtest", "SIMPLE"]))
            return doc, f"{base}.{path}.implementation"
        case "bad_endpoint":
            node["endpoint"] = {"type": draw(st.sampled_from(["HTTP", "rest", "SOAP"]))}
            return doc, f"{base}.{path}.endpoint.type"
        case "negative_replicas":
            predictor["replicas"] = draw(st.integers(-100, -1))
            return doc, f"{base}.replicas"
        case "bad_parameter":
            kind, value = draw(
                st.sampled_from([("INT", "abc"), ("INT", "1.5"), ("FLOAT", "x"), ("BOOL", "maybe")])
            )
            params = node.setdefault("parameters", [])
            params.append({"name": "broken", "type": kind, "value": value})
            return doc, f"{base}.{path}.parameters[{len(params) - 1}].value"
        case "drop_container" if _backed(predictor):
            path, node = draw(st.sampled_from(_backed(predictor)))
            for template in _templates(predictor):
                template["spec"]["containers"] = [
                    c for c in template["spec"]["containers"] if c["name"] != node["name"]
                ]
            return doc, f"{base}.{path}"
        case "duplicate_node" if len(nodes) > 1:
            j = draw(st.integers(1, len(nodes) - 1))
            first = draw(st.integers(0, j - 1))
            nodes[j][1]["name"] = nodes[first][1]["name"]
            return doc, f"{base}.{nodes[j][0]}.name"
        case "traffic":
            head = doc["spec"]["predictors"][0]  # the generator puts the serving predictors first
            traffic = head.get("traffic")
            head["traffic"] = 50 if traffic is None else (traffic - 1 if traffic >= 1 else traffic + 1)
            return doc, "spec.predictors"
        case "bad_name":
            doc["metadata"]["name"] = draw(st.sampled_from(["Bad_Name", "-x", "x-", "a.b", "UPPER"]))
            return doc, "metadata.name"
        case _:
            doc["apiVersion"] = draw(
                st.sampled_from(["machinelearning.seldon.io/v2", "seldon.io/v1alpha2", "v1"])
            )
            return doc, "apiVersion"


@FAST
@given(broken())
def test_broken_manifests_are_refused_naming_the_field(case: tuple[dict[str, Any], str]) -> None:
    doc, expected = case
    with pytest.raises(ManifestError) as info:
        validate(_load(doc, as_json=False))
    err = info.value
    assert err.path == expected
    assert str(err).startswith(f"gen.yaml: {expected}: ")
    assert "\n" not in str(err)
