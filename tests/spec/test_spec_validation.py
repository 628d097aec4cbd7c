"""Bad manifests are refused before anything starts, with the field path and what to do."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from seldon_serving.spec import ManifestError, deployment_name, find_problems, parse_deployment, validate


def base() -> dict[str, Any]:
    """A valid v1alpha2 deployment: a RANDOM_ABTEST between a model and a router over two models."""
    return {
        "apiVersion": "machinelearning.seldon.io/v1alpha2",
        "kind": "SeldonDeployment",
        "metadata": {"name": "shop"},
        "spec": {
            "name": "shop",
            "predictors": [
                {
                    "name": "main",
                    "componentSpecs": [
                        {
                            "spec": {
                                "containers": [{"name": "model-a", "image": "seldonio/mock_classifier:1.0"}]
                            }
                        },
                        {
                            "spec": {
                                "containers": [
                                    {"name": "router", "image": "seldonio/mab_epsilon_greedy:1.1"},
                                    {"name": "model-b", "image": "seldonio/mock_classifier:1.0"},
                                    {"name": "model-c", "env": [{"name": "MODEL_NAME", "value": "MyModel"}]},
                                ]
                            }
                        },
                    ],
                    "graph": {
                        "name": "ab",
                        "implementation": "RANDOM_ABTEST",
                        "parameters": [{"name": "ratioA", "value": "0.5", "type": "FLOAT"}],
                        "children": [
                            {"name": "model-a", "type": "MODEL"},
                            {
                                "name": "router",
                                "type": "ROUTER",
                                "parameters": [
                                    {"name": "n_branches", "value": "2", "type": "INT"},
                                    {"name": "verbose", "value": "1", "type": "BOOL"},
                                ],
                                "children": [
                                    {"name": "model-b", "type": "MODEL"},
                                    {"name": "model-c", "type": "MODEL"},
                                ],
                            },
                        ],
                    },
                }
            ],
        },
    }


def check(doc: dict[str, Any]) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        validate(parse_deployment(doc, source="shop.yaml"))
    assert "\n" not in str(info.value)
    return info.value


def graph(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["predictors"][0]["graph"]


def test_the_base_manifest_is_valid() -> None:
    sdep = parse_deployment(base())
    validate(sdep)
    assert find_problems(sdep) == []
    assert deployment_name(sdep) == "shop"


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return change


G = ["spec", "predictors", 0, "graph"]
ROUTER = [*G, "children", 1]
PODS = ["spec", "predictors", 0, "componentSpecs"]


def _second_predictor(traffic: tuple[int | None, int | None], name: str = "canary") -> Callable[[dict], None]:
    def change(doc: dict[str, Any]) -> None:
        other = copy.deepcopy(doc["spec"]["predictors"][0])
        other["name"] = name
        doc["spec"]["predictors"].append(other)
        for p, t in zip(doc["spec"]["predictors"], traffic, strict=True):
            if t is not None:
                p["traffic"] = t

    return change


CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("wrong apiVersion", _set(["apiVersion"], "machinelearning.seldon.io/v2"), "apiVersion", "is not one of"),
    ("wrong kind", _set(["kind"], "SeldonDeploy"), "kind", "is not SeldonDeployment"),
    ("bad metadata.name", _set(["metadata", "name"], "Shop_1"), "metadata.name", "lowercase letters"),
    ("bad spec.name", _set(["spec", "name"], "-shop"), "spec.name", "not a valid name"),
    # Kubernetes takes object names up to 253 characters (a 64-character name is valid: see
    # test_manifest_forms.py); the names derived from it are hashed on a cluster.
    ("too long name", _set(["metadata", "name"], "a" * 254), "metadata.name", "Kubernetes takes at most 253"),
    (
        "no name at all",
        lambda d: (d["metadata"].pop("name"), d["spec"].pop("name")),
        "metadata.name",
        "needs a name",
    ),
    (
        "duplicate predictor",
        _second_predictor((50, 50), name="main"),
        "spec.predictors[1].name",
        "duplicate predictor name 'main'",
    ),
    (
        "duplicate node",
        _set([*ROUTER, "children", 1, "name"], "model-b"),
        "spec.predictors[0].graph.children[1].children[1].name",
        "duplicate node name 'model-b'",
    ),
    (
        # A node with no type at all is a MODEL, as Seldon defaults it; UNKNOWN_TYPE written out
        # with no implementation or methods is what Seldon's webhook refuses.
        "node of unknown type",
        lambda d: graph(d)["children"][0].update(type="UNKNOWN_TYPE"),
        "spec.predictors[0].graph.children[0].type",
        "is of type UNKNOWN_TYPE with no implementation or methods",
    ),
    (
        "no container",
        _set([*G, "children", 0, "name"], "model-z"),
        "spec.predictors[0].graph.children[0]",
        "node 'model-z' has no container or implementation: add a container named 'model-z'",
    ),
    (
        "container without image",
        _set([*PODS, 0, "spec", "containers", 0, "image"], KeyError),
        "spec.predictors[0].componentSpecs[0].spec.containers[0].image",
        "give an image or an env MODEL_NAME",
    ),
    (
        "router without children",
        _set([*ROUTER, "children"], []),
        "spec.predictors[0].graph.children[1].children",
        "router 'router' has no children",
    ),
    (
        "INT parameter not an int",
        _set([*ROUTER, "parameters", 0, "value"], "abc"),
        "spec.predictors[0].graph.children[1].parameters[0].value",
        "'abc' is not an INT",
    ),
    (
        "BOOL parameter not a bool",
        _set([*ROUTER, "parameters", 1, "value"], "maybe"),
        "spec.predictors[0].graph.children[1].parameters[1].value",
        "'maybe' is not a BOOL",
    ),
    (
        "traffic short of 100",
        _second_predictor((50, 40)),
        "spec.predictors",
        "sums to 90 (main 50, canary 40)",
    ),
    ("two predictors no traffic", _second_predictor((None, None)), "spec.predictors", "must sum to 100"),
    ("one predictor at 60%", _set(["spec", "predictors", 0, "traffic"], 60), "spec.predictors", "sums to 60"),
    ("negative traffic", _second_predictor((110, -10)), "spec.predictors[0].traffic", "between 0 and 100"),
    (
        "componentSpec in v1alpha2",
        lambda d: d["spec"]["predictors"][0].update(
            componentSpec=d["spec"]["predictors"][0].pop("componentSpecs")[0]
        ),
        "spec.predictors[0].componentSpec",
        "takes a list componentSpecs",
    ),
    (
        "componentSpecs in v1alpha1",
        _set(["apiVersion"], "machinelearning.seldon.io/v1alpha1"),
        "spec.predictors[0].componentSpecs",
        "v1alpha1 has a single componentSpec",
    ),
    (
        "same container twice",
        _set([*PODS, 1, "spec", "containers", 1, "name"], "model-a"),
        "spec.predictors[0].componentSpecs[1].spec.containers[1].name",
        "duplicate container name 'model-a'",
    ),
]


@pytest.mark.parametrize(("change", "path", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_manifest_is_refused_with_its_path(
    change: Callable[[dict[str, Any]], None], path: str, words: str
) -> None:
    doc = base()
    change(doc)
    err = check(doc)
    assert err.path == path
    assert str(err).startswith(f"shop.yaml: {path}: ")
    assert words in str(err)


def test_shadow_predictor_is_left_out_of_the_traffic_sum() -> None:
    doc = base()
    _second_predictor((100, None), name="shadow")(doc)
    doc["spec"]["predictors"][1]["shadow"] = True
    validate(parse_deployment(doc))


def test_a_canary_split_is_valid() -> None:
    doc = base()
    _second_predictor((75, 25))(doc)
    validate(parse_deployment(doc))


def test_only_shadows_is_refused() -> None:
    doc = base()
    doc["spec"]["predictors"][0]["shadow"] = True
    assert "at least one must serve" in str(check(doc))


def test_remote_endpoint_and_builtins_need_no_container() -> None:
    doc = base()
    graph(doc)["children"][0] = {
        "name": "remote",
        "type": "MODEL",
        "endpoint": {"service_host": "10.0.0.5", "service_port": 9000, "type": "REST"},
    }
    graph(doc)["children"][1]["children"][1] = {"name": "stub", "implementation": "SIMPLE_MODEL"}
    validate(parse_deployment(doc))


def test_unknown_type_with_methods_is_accepted() -> None:
    doc = base()
    graph(doc)["children"][0] = {"name": "model-a", "type": "UNKNOWN_TYPE", "methods": ["TRANSFORM_INPUT"]}
    validate(parse_deployment(doc))


def test_find_problems_lists_every_problem() -> None:
    doc = base()
    doc["metadata"]["name"] = "Bad"
    graph(doc)["children"][1]["parameters"][0]["value"] = "x"
    paths = [e.path for e in find_problems(parse_deployment(doc))]
    assert paths == ["metadata.name", "spec.predictors[0].graph.children[1].parameters[0].value"]


def test_v1_fields_are_accepted() -> None:
    doc = base()
    doc["apiVersion"] = "machinelearning.seldon.io/v1"
    doc["spec"].update(protocol="seldon", transport="rest", replicas=2)
    doc["spec"]["predictors"][0]["graph"]["logger"] = {"url": "http://log", "mode": "all"}
    sdep = parse_deployment(doc)
    validate(sdep)
    assert sdep.spec.replicas == 2 and sdep.to_dict() == doc


def test_deployment_name_falls_back_to_spec_name() -> None:
    doc = base()
    del doc["metadata"]["name"]
    assert deployment_name(parse_deployment(doc)) == "shop"


def test_a_logger_needs_a_mode_and_a_url_that_can_receive_logs() -> None:
    doc = base()
    doc["spec"]["predictors"][0]["graph"]["logger"] = {"url": "ftp://logs.example"}
    problems = {e.path: str(e) for e in find_problems(parse_deployment(doc))}
    assert set(problems) == {"spec.predictors[0].graph.logger.mode", "spec.predictors[0].graph.logger.url"}
    assert "without a mode: set all, request or response" in problems["spec.predictors[0].graph.logger.mode"]
    assert "'ftp' is none of http, https, file" in problems["spec.predictors[0].graph.logger.url"]
    doc["spec"]["predictors"][0]["graph"]["logger"] = {"mode": "request"}  # the server's default url
    validate(parse_deployment(doc))
