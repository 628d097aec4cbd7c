"""Our gateway driven by the REAL SeldonClient (seldon-core 1.18), as a user's scripts drive
Seldon behind Ambassador: REST and gRPC, with and without namespace, predict and feedback,
through a single model, an A/B test, a combiner and a transformer chain.

SeldonClient parses answers strictly (client_return_type="proto"): one field outside the
schema and it reports response=None, so every test asserts on the parsed response."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.compat.conftest import run_seldon_client
from tests.deploy.gateway import USER_MODELS, Gateway, deployment, gateway, unit, write
from tests.helpers import enter_all

pytestmark = [pytest.mark.compat, pytest.mark.slow]

X = [[1.0, 2.0, 3.0, 4.0]]
TRANSPORTS = ("rest", "grpc")
NAMESPACES = (None, "default")
AB_CALLS = 16


def _linear() -> Any:
    spec = importlib.util.spec_from_file_location(
        "linear_softmax_reference", USER_MODELS / "LinearSoftmax.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LinearSoftmax


def expected(x: list[list[float]], scale: float = 1.0) -> list[float]:
    return np.asarray(_linear()(scale).predict(np.array(x))).ravel().tolist()


DEPLOYMENTS = {
    "single": (unit("model", "MODEL"), {"model": "LinearSoftmax"}),
    "abtest": (
        unit(
            "ab",
            implementation="RANDOM_ABTEST",
            params={"ratioA": 0.5},
            children=[unit("a", "MODEL"), unit("b", "MODEL", params={"scale": 2.0})],
        ),
        {"a": "LinearSoftmax", "b": "LinearSoftmax"},
    ),
    "combiner": (
        unit("mean", "COMBINER", children=[unit("m1", "MODEL"), unit("m2", "MODEL", params={"scale": 3.0})]),
        {"mean": "MeanCombiner", "m1": "LinearSoftmax", "m2": "LinearSoftmax"},
    ),
    "chain": (
        unit("d1", "TRANSFORMER", children=[unit("d2", "TRANSFORMER", children=[unit("model", "MODEL")])]),
        {"d1": "Doubler", "d2": "Doubler", "model": "LinearSoftmax"},
    ),
}


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Gateway]]:
    root = tmp_path_factory.mktemp("gateway-compat")
    for name, (graph, classes) in DEPLOYMENTS.items():
        write(root / "all", f"{name}.yaml", deployment(name, graph, classes), *set(classes.values()))
    write(root / "solo", "single.yaml", deployment("single", *DEPLOYMENTS["single"]), "LinearSoftmax")
    with contextlib.ExitStack() as stack:
        everything, solo = enter_all(
            stack,
            [
                gateway(root / "all", state_dir=root / "state-all"),
                gateway(root / "solo", state_dir=root / "state-solo"),
            ],
        )
        yield everything, solo


def _client(g: Gateway, transport: str, name: str | None, namespace: str | None, kind: str) -> dict:
    endpoint = g.url.removeprefix("http://") if transport == "rest" else g.grpc
    client = {
        "gateway": kind,
        "transport": transport,
        "gateway_endpoint": endpoint,
        "payload_type": "tensor",
        "client_return_type": "proto",
    }
    if name:
        client["deployment_name"] = name
    if namespace:
        client["namespace"] = namespace
    return client


@pytest.fixture(scope="module")
def outcomes(gateways: tuple[Gateway, Gateway], compat_python: Path) -> dict[str, Any]:
    """Every SeldonClient call in ONE driver process (seldon_core takes seconds to import)."""
    everything, solo = gateways
    calls: list[dict[str, Any]] = []
    index: dict[str, Any] = {}

    def add(key: str, call: dict[str, Any]) -> int:
        calls.append(call)
        index[key] = len(calls) - 1
        return len(calls) - 1

    for transport in TRANSPORTS:
        for namespace in NAMESPACES:
            for name in ("single", "combiner", "chain"):
                client = _client(everything, transport, name, namespace, "ambassador")
                at = add(
                    f"predict {name} {transport} {namespace}",
                    {"call": "predict", "client": client, "kwargs": {"data": X}},
                )
                request, response = {"$from": at, "key": "request"}, {"$from": at, "key": "response"}
                feedback = {"prediction_request": request, "prediction_response": response, "reward": 1.0}
                add(
                    f"feedback {name} {transport} {namespace}",
                    {"call": "feedback", "client": client, "kwargs": feedback},
                )
        client = _client(everything, transport, "abtest", None, "ambassador")
        for i in range(AB_CALLS):
            at = add(f"ab {transport} {i}", {"call": "predict", "client": client, "kwargs": {"data": X}})
        add(
            f"ab feedback {transport}",
            {
                "call": "feedback",
                "client": client,
                "kwargs": {
                    "prediction_request": {"$from": at, "key": "request"},
                    "prediction_response": {"$from": at},
                    "reward": 0.5,
                },
            },
        )
        seldon = _client(solo, transport, None, None, "seldon")
        add(f"seldon {transport}", {"call": "predict", "client": seldon, "kwargs": {"data": X}})
        add(
            f"missing {transport}",
            {
                "call": "predict",
                "client": _client(everything, transport, "nope", None, "ambassador"),
                "kwargs": {"data": X},
            },
        )

    results = run_seldon_client(compat_python, calls)
    return {key: results[i] for key, i in index.items()}


def tensor(outcome: dict[str, Any], names: tuple[str, ...] = ("a", "b", "c")) -> list[float]:
    assert outcome["success"], outcome["msg"]
    response = outcome["response"]
    assert response is not None, "SeldonClient could not parse our answer"
    assert response["data"]["tensor"]["shape"] == [1, 3]
    assert response["data"]["names"] == list(names)
    return response["data"]["tensor"]["values"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("namespace", NAMESPACES)
def test_single_model(outcomes: dict[str, Any], transport: str, namespace: str | None) -> None:
    outcome = outcomes[f"predict single {transport} {namespace}"]
    assert tensor(outcome) == pytest.approx(expected(X))
    meta = outcome["response"]["meta"]
    assert meta["requestPath"] == {"model": "example/linearsoftmax:0.1"}
    assert meta["tags"] == {"model": "linear-softmax"}
    assert meta["metrics"][0]["key"] == "mycounter"
    assert meta["puid"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("namespace", NAMESPACES)
def test_combiner_and_transformer_chain(
    outcomes: dict[str, Any], transport: str, namespace: str | None
) -> None:
    combined = outcomes[f"predict combiner {transport} {namespace}"]
    mean = (np.array(expected(X)) + np.array(expected(X, 3.0))) / 2
    # MeanCombiner has no class_names: Seldon's default names
    assert tensor(combined, ("t:0", "t:1", "t:2")) == pytest.approx(mean.tolist())
    assert combined["response"]["meta"]["routing"] == {"mean": -1}
    assert set(combined["response"]["meta"]["requestPath"]) == {"mean", "m1", "m2"}

    chained = outcomes[f"predict chain {transport} {namespace}"]
    assert tensor(chained) == pytest.approx(expected([[4 * v for v in X[0]]]))
    assert chained["response"]["meta"]["routing"] == {"d1": -1, "d2": -1}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("namespace", NAMESPACES)
def test_feedback_is_accepted(outcomes: dict[str, Any], transport: str, namespace: str | None) -> None:
    for name in ("single", "combiner", "chain"):
        outcome = outcomes[f"feedback {name} {transport} {namespace}"]
        assert outcome["success"], outcome["msg"]
        assert outcome["response"] == {}  # REST `{}`, gRPC an empty SeldonMessage: both parse


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_ab_test_reaches_both_branches_and_records_routing(outcomes: dict[str, Any], transport: str) -> None:
    by_branch = {0: expected(X), 1: expected(X, 2.0)}
    seen = set()
    for i in range(AB_CALLS):
        outcome = outcomes[f"ab {transport} {i}"]
        values = tensor(outcome)
        branch = outcome["response"]["meta"]["routing"]["ab"]
        assert values == pytest.approx(by_branch[branch])
        assert set(outcome["response"]["meta"]["requestPath"]) == {"ab", "a" if branch == 0 else "b"}
        seen.add(branch)
    assert seen == {0, 1}  # P(one branch only in 16 fair draws) = 2**-15
    feedback = outcomes[f"ab feedback {transport}"]
    assert feedback["success"] and feedback["response"] == {}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_gateway_seldon_form_and_unknown_deployment(outcomes: dict[str, Any], transport: str) -> None:
    assert tensor(outcomes[f"seldon {transport}"]) == pytest.approx(expected(X))
    missing = outcomes[f"missing {transport}"]
    assert not missing["success"]
    if transport == "rest":
        # our 404 body is {"status": {...}}: it parses, and says what is missing
        assert missing["msg"].startswith("404")
        assert missing["response"]["status"]["status"] == "FAILURE"
        assert "'nope'" in missing["response"]["status"]["info"]
    else:
        assert "NOT_FOUND" in missing["msg"] or "nope" in missing["msg"]
