"""How each node will run is decided, and checked, before anything starts: a built-in's own
rules (its children, its parameters) and unknown implementations are refused with the field
path, like the manifest's own rules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from seldon_serving.engine.plan import BUILTIN, REMOTE, USER_CLASS, check_classes, check_deployment
from seldon_serving.spec import ManifestError, parse_deployment
from tests.spec.test_spec_validation import G, _set, base, graph

CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    (
        "abtest with one child",
        lambda d: graph(d)["children"].pop(),
        "spec.predictors[0].graph.children",
        "RANDOM_ABTEST needs exactly 2 children, has 1",
    ),
    (
        "abtest without ratioA",
        _set([*G, "parameters"], []),
        "spec.predictors[0].graph.parameters",
        "needs a parameter ratioA",
    ),
    (
        "abtest ratio out of range",
        _set([*G, "parameters", 0, "value"], "1.5"),
        "spec.predictors[0].graph.parameters[0].value",
        "ratioA must be a number between 0 and 1",
    ),
    (
        "combiner without children",
        _set([*G, "children", 0], {"name": "avg", "implementation": "AVERAGE_COMBINER"}),
        "spec.predictors[0].graph.children[0].children",
        "AVERAGE_COMBINER needs at least one child",
    ),
    (
        "prepackaged server without modelUri",
        _set([*G, "children", 0], {"name": "sk", "implementation": "SKLEARN_SERVER", "type": "MODEL"}),
        "spec.predictors[0].graph.children[0].modelUri",
        "has no modelUri",
    ),
    (
        "unknown implementation",
        _set([*G, "children", 0], {"name": "m", "implementation": "MAGIC", "type": "MODEL"}),
        "spec.predictors[0].graph.children[0].implementation",
        "'MAGIC' is not one of UNKNOWN_IMPLEMENTATION, SIMPLE_MODEL, SIMPLE_ROUTER, RANDOM_ABTEST,",
    ),
    (
        "router image without n_branches",
        _set([*G, "children", 1, "parameters"], []),
        "spec.predictors[0].graph.children[1].parameters",
        "parameter n_branches is required",
    ),
    (
        "router image with a bad epsilon",
        lambda d: graph(d)["children"][1]["parameters"].append(
            {"name": "epsilon", "value": "2", "type": "FLOAT"}
        ),
        "spec.predictors[0].graph.children[1].parameters[2].value",
        "parameter epsilon must be in [0.0, 1.0], got 2.0",
    ),
    (
        "unknown execution mode on a node",
        lambda d: (
            graph(d)["children"][1]["children"][1]
            .setdefault("parameters", [])
            .append({"name": "seldon.io/execution", "value": "fork", "type": "STRING"})
        ),
        "spec.predictors[0].graph.children[1].children[1].parameters[0].value",
        "seldon.io/execution='fork' is not one of inline, thread, process",
    ),
    (
        "own interpreter in a thread",
        lambda d: d["spec"].update(
            annotations={"seldon.io/execution": "thread", "seldon.io/python": "/venvs/m/bin/python"}
        ),
        "spec.annotations.seldon.io/python",
        "seldon.io/python runs a node in its own process: it needs seldon.io/execution: process, not thread",
    ),
    (
        "bad timeout annotation",
        lambda d: d["spec"].update(annotations={"seldon.io/rest-read-timeout": "soon"}),
        "spec.annotations",
        "seldon.io/rest-read-timeout='soon' is not a number of milliseconds",
    ),
]


@pytest.mark.parametrize(("change", "path", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_node_that_cannot_run_is_refused_with_its_path(
    change: Callable[[dict[str, Any]], None], path: str, words: str
) -> None:
    doc = base()
    change(doc)
    with pytest.raises(ManifestError) as info:
        check_deployment(parse_deployment(doc, source="shop.yaml"))
    err = info.value
    assert "\n" not in str(err)
    assert err.path == path
    assert str(err).startswith(f"shop.yaml: {path}: ")
    assert words in str(err)


def test_each_node_is_planned_once_with_how_it_runs() -> None:
    doc = base()
    graph(doc)["children"][0]["endpoint"] = {"service_host": "10.0.0.5", "service_port": 9000}
    (plan,) = check_deployment(parse_deployment(doc))
    by_name = {node.name: node for node in plan.walk()}
    assert by_name["ab"].how == BUILTIN and by_name["ab"].request_path == "RANDOM_ABTEST"
    assert by_name["model-a"].how == REMOTE and by_name["model-a"].label == "REST 10.0.0.5:9000"
    assert by_name["router"].how == BUILTIN and by_name["router"].builtin is not None
    assert by_name["router"].builtin.service_type == "ROUTER"
    assert by_name["model-c"].how == USER_CLASS and by_name["model-c"].model_name == "MyModel"
    assert by_name["router"].methods == {"ROUTE", "SEND_FEEDBACK"}


def test_classes_are_found_offline_without_running_them(tmp_path: Path) -> None:
    sdep = parse_deployment(base(), source=str(tmp_path / "shop.yaml"))
    with pytest.raises(ManifestError) as info:
        check_classes(sdep, tmp_path)
    assert info.value.path == "spec.predictors[0].graph.children[1].children[1]"
    assert "MODEL_NAME MyModel: no module named 'MyModel'" in str(info.value)

    # A class whose module would fail at import time is still found: nothing is run.
    (tmp_path / "MyModel.py").write_text("raise SystemExit('must not run')\nclass MyModel:\n    pass\n")
    check_classes(sdep, tmp_path)

    (tmp_path / "MyModel.py").write_text("class Other:\n    pass\n")
    with pytest.raises(ManifestError, match=r"module 'MyModel' \(.*\) has no class 'MyModel'"):
        check_classes(sdep, tmp_path)


def test_execution_settings_come_from_the_node_else_the_predictor_else_the_deployment() -> None:
    doc = base()
    doc["spec"]["annotations"] = {"seldon.io/execution": "thread"}
    doc["spec"]["predictors"][0]["annotations"] = {"seldon.io/execution": "inline"}
    node = graph(doc)["children"][1]["children"][1]
    node["parameters"] = [
        {"name": "seldon.io/python", "value": "/venvs/m/bin/python", "type": "STRING"},
        {"name": "alpha", "value": "2", "type": "INT"},
    ]
    (plan,) = check_deployment(parse_deployment(doc))
    model_c = next(n for n in plan.walk() if n.name == "model-c")
    assert (model_c.execution, model_c.python) == ("process", "/venvs/m/bin/python")
    assert model_c.parameters == {"alpha": 2}  # ours are not passed to the class
    del doc["spec"]["predictors"][0]["annotations"]
    node["parameters"] = []
    (plan,) = check_deployment(parse_deployment(doc))
    assert next(n for n in plan.walk() if n.name == "model-c").execution == "thread"
    # Built-ins run inline whatever is asked.
    assert next(n for n in plan.walk() if n.name == "router").how == BUILTIN


def test_a_model_server_node_is_planned_as_its_class_without_reading_the_model() -> None:
    doc = base()
    graph(doc)["children"][0] = {
        "name": "sk",
        "implementation": "SKLEARN_SERVER",
        "type": "TRANSFORMER",  # Seldon's operator makes a model server's node a MODEL anyway
        "modelUri": "s3://bucket-that-is-never-read/model",
        "parameters": [
            {"name": "method", "value": "predict", "type": "STRING"},
            {"name": "seldon.io/execution", "value": "inline", "type": "STRING"},
        ],
    }
    (plan,) = check_deployment(parse_deployment(doc))
    sk = next(n for n in plan.walk() if n.name == "sk")
    assert sk.how == USER_CLASS and sk.service_type == "MODEL" and sk.execution == "inline"
    assert sk.model_name == "seldon_serving.components.servers.sklearn.SKLearnServer"
    assert sk.parameters == {"method": "predict", "model_uri": "s3://bucket-that-is-never-read/model"}
    assert sk.label == "SKLEARN_SERVER s3://bucket-that-is-never-read/model"
    assert sk.request_path == "SKLEARN_SERVER"
    # With an endpoint, it is a server someone else runs: called there.
    graph(doc)["children"][0]["endpoint"] = {"service_host": "10.0.0.7", "service_port": 9000}
    (plan,) = check_deployment(parse_deployment(doc))
    sk = next(n for n in plan.walk() if n.name == "sk")
    assert sk.how == REMOTE and sk.request_path == "SKLEARN_SERVER" and sk.service_type == "MODEL"
