"""Helpers the engine uses to walk a predictor: node order, containers, images, typed parameters."""

from __future__ import annotations

import orjson
import pytest

from seldon_serving.spec import (
    ManifestError,
    PredictiveUnit,
    PredictorSpec,
    container_for,
    generate,
    iter_units,
    load_documents,
    parse_bool,
    typed_parameters,
    unit_image,
)


def _mab() -> PredictorSpec:
    doc = generate("mab", "mymab", image_a="seldonio/a:1", image_b="seldonio/b:2")
    (sdep,) = load_documents(orjson.dumps(doc)).deployments
    return sdep.spec.predictors[0]


def test_iter_units_is_depth_first_with_paths() -> None:
    unit = PredictiveUnit.model_validate(
        {
            "name": "t",
            "type": "TRANSFORMER",
            "children": [
                {"name": "r", "type": "ROUTER", "children": [{"name": "a", "type": "MODEL"}]},
                {"name": "b", "type": "MODEL"},
            ],
        }
    )
    assert [(path, u.name) for path, u in iter_units(unit)] == [
        ("graph", "t"),
        ("graph.children[0]", "r"),
        ("graph.children[0].children[0]", "a"),
        ("graph.children[1]", "b"),
    ]


def test_container_and_image_of_each_node() -> None:
    predictor = _mab()
    assert container_for(predictor, "eg-router") == {
        "image": "seldonio/mab_epsilon_greedy:1.1",
        "imagePullPolicy": "IfNotPresent",
        "name": "eg-router",
    }
    assert container_for(predictor, "nobody") is None
    images = {u.name: unit_image(predictor, u) for _, u in iter_units(predictor.graph)}
    assert images == {
        "eg-router": "seldonio/mab_epsilon_greedy:1.1",
        "classifier-1": "seldonio/a:1",
        "classifier-2": "seldonio/b:2",
    }


def test_builtins_have_no_image_and_v1alpha1_containers_are_found() -> None:
    doc = generate("abtest", "myab", image_a="seldonio/a:1", image_b="seldonio/b:2", api_version="v1alpha1")
    (sdep,) = load_documents(orjson.dumps(doc)).deployments
    predictor = sdep.spec.predictors[0]
    assert unit_image(predictor, predictor.graph) == ""
    assert unit_image(predictor, predictor.graph.children[1]) == "seldonio/b:2"


def test_typed_parameters_follow_their_declared_types() -> None:
    assert typed_parameters(_mab().graph) == {"n_branches": 2, "epsilon": 0.2, "verbose": True}
    unit = PredictiveUnit.model_validate(
        {
            "name": "x",
            "parameters": [
                {"name": "d", "value": "1e-3", "type": "DOUBLE"},
                {"name": "s", "value": "007", "type": "STRING"},
                {"name": "off", "value": "False", "type": "BOOL"},
                {"name": "n", "value": -3, "type": "INT"},
            ],
        }
    )
    assert typed_parameters(unit) == {"d": 0.001, "s": "007", "off": False, "n": -3}


def test_bool_uses_strtobool_not_python_truthiness() -> None:
    # Seldon issue #439: bool("False") is True; a BOOL "False" must mean False
    assert [parse_bool(v) for v in ("False", "no", "OFF", "0", "f")] == [False] * 5
    assert [parse_bool(v) for v in ("True", "yes", "on", "1", "t")] == [True] * 5
    with pytest.raises(ValueError, match="not a BOOL"):
        parse_bool("maybe")


def test_bad_parameter_value_names_its_index() -> None:
    unit = PredictiveUnit.model_validate(
        {
            "name": "x",
            "parameters": [
                {"name": "a", "value": "1", "type": "INT"},
                {"name": "b", "value": "x", "type": "FLOAT"},
            ],
        }
    )
    with pytest.raises(ManifestError) as info:
        typed_parameters(unit)
    assert info.value.path == "parameters[1].value"
    assert "'x' is not a FLOAT" in str(info.value)
