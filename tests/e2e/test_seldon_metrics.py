"""Prometheus as Seldon 1.x exported it, over real servers: the executor's server and per-node
client histograms with all of Seldon's labels, a microservice's request histogram from its start,
and our Grafana dashboard referencing only what the servers export."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol._pb import prediction_pb2_grpc as pb_grpc
from tests.helpers import ROOT, Gateway, Server, free_port, gateway, microservice, wait_until

pytestmark = pytest.mark.slow

EXAMPLES = ROOT / "examples" / "manifests"
MODELS = ROOT / "tests" / "compat" / "models"
DASHBOARD = ROOT / "docs" / "grafana" / "seldon-serving.json"
ROW = {"data": {"ndarray": [[1.0, 2.0]]}}
MICROSERVICE_REQUESTS = "seldon_api_microservice_requests_seconds"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """myout (outlier detector -> classifier, its predictor annotated `version: v7` and labelled
    `version: v3`) and myabtest."""
    directory = tmp_path_factory.mktemp("manifests")
    doc = yaml.safe_load((EXAMPLES / "myout.yaml").read_text())
    doc["items"][0]["spec"]["predictors"][0]["annotations"]["version"] = "v7"
    doc["items"][0]["spec"]["predictors"][0]["labels"] = {"version": "v3"}
    (directory / "myout.yaml").write_text(yaml.safe_dump(doc))
    (directory / "myabtest.yaml").write_text((EXAMPLES / "myabtest.yaml").read_text())
    with gateway(directory, state_dir=tmp_path_factory.mktemp("state"), workers=2) as g:
        yield g


@pytest.fixture(scope="module")
def component() -> Iterator[Server]:
    with microservice("LinearSoftmax", cwd=MODELS, metrics_port=free_port()) as server:
        yield server


def scrape(url: str) -> list[Any]:
    return list(text_string_to_metric_families(httpx.get(url, timeout=10).text))


def counts(families: list[Any], name: str) -> dict[frozenset[tuple[str, str]], float]:
    """{labels: value} of the `<name>_count` samples (summed over the workers already)."""
    return {
        frozenset(s.labels.items()): s.value
        for family in families
        for s in family.samples
        if s.name == name + "_count"
    }


def test_executor_histograms_have_seldons_names_and_labels(gw: Gateway) -> None:
    url = f"{gw.url}/seldon/myout/api/v1.0/predictions"
    for _ in range(3):
        assert httpx.post(url, json=ROW, timeout=10).status_code == 200
    assert httpx.post(url, json={"data": {"ndarray": []}}, timeout=10).status_code == 400
    families = scrape(gw.admin_url + "/prometheus")

    where = {"deployment_name": "myout", "predictor_name": "myout", "predictor_version": "v7"}
    server = counts(families, "seldon_api_executor_server_requests_seconds")
    mine = {labels: n for labels, n in server.items() if ("deployment_name", "myout") in labels}
    assert mine == {
        frozenset({**where, "service": "predictions", "method": "post", "code": "200"}.items()): 3.0,
        frozenset({**where, "service": "predictions", "method": "post", "code": "400"}.items()): 1.0,
    }

    detector = {
        **where,
        "model_name": "outlier-detector",
        "model_image": "seldonio/outlier_mahalanobis",
        "model_version": "0.3",
        "service": "/transform-input",  # a TRANSFORMER's input step, as Seldon's executor calls it
        "method": "post",
    }
    classifier = {
        **where,
        "model_name": "myout",
        "model_image": "seldonio/mock_classifier",
        "model_version": "1.0",
        "service": "/predict",
        "method": "post",
    }
    client = counts(families, "seldon_api_executor_client_requests_seconds")
    assert {labels: n for labels, n in client.items() if ("deployment_name", "myout") in labels} == {
        frozenset({**detector, "code": "200"}.items()): 3.0,
        frozenset({**detector, "code": "400"}.items()): 1.0,  # the empty array stopped at the first node
        frozenset({**classifier, "code": "200"}.items()): 3.0,
    }
    # A node's own metrics carry the predictor's version label, as Seldon's wrapper has them.
    observation = next(f for f in families if f.name == "observation").samples[0].labels
    assert observation["predictor_version"] == "v3"
    assert observation["model_name"] == "outlier-detector"


def test_calls_on_the_gateways_grpc_port_are_labelled_as_seldons_grpc_server(gw: Gateway) -> None:
    with grpc.insecure_channel(gw.grpc) as channel:
        stub = pb_grpc.SeldonStub(channel)
        metadata = (("seldon", "myabtest"),)
        stub.Predict(
            pb.SeldonMessage(data=pb.DefaultData(tensor=pb.Tensor(shape=[1, 4], values=[1, 2, 3, 4]))),
            metadata=metadata,
        )
        with pytest.raises(grpc.RpcError) as refused:
            stub.Predict(pb.SeldonMessage(strData="not numbers"), metadata=metadata)
    server = counts(scrape(gw.admin_url + "/prometheus"), "seldon_api_executor_server_requests_seconds")
    grpc_calls = {
        dict(labels)["code"]: n
        for labels, n in server.items()
        if ("service", "/seldon.protos.Seldon/Predict") in labels
    }
    status = "".join(part.capitalize() for part in refused.value.code().name.split("_"))
    assert grpc_calls == {"OK": 1.0, status: 1.0}
    labelled = next(
        dict(labels) for labels in server if ("service", "/seldon.protos.Seldon/Predict") in labels
    )
    assert labelled["method"] == "unary" and labelled["deployment_name"] == "myabtest"


def test_a_microservice_counts_every_method_from_its_start(component: Server) -> None:
    for where in (f"{component.url}/metrics", f"http://127.0.0.1:{component.metrics_port}/metrics"):
        text = httpx.get(where, timeout=10).text
        assert f"# TYPE {MICROSERVICE_REQUESTS} histogram" in text, where
    assert httpx.post(
        f"{component.url}/predict", json={"data": {"ndarray": [[1.0, 2.0, 3.0, 4.0]]}}
    ).is_success
    with grpc.insecure_channel(component.grpc) as channel:
        feedback = pb.Feedback(reward=1.0)
        feedback.request.data.ndarray.values.add().list_value.values.add().number_value = 1.0
        pb_grpc.ModelStub(channel).SendFeedback(feedback, timeout=10)
    assert httpx.post(f"{component.url}/predict", json={"data": {"ndarray": [["x"]]}}).status_code >= 400
    by_method = {
        (dict(labels)["method"], dict(labels)["code"]): n
        for labels, n in counts(
            scrape(f"http://127.0.0.1:{component.metrics_port}/metrics"), MICROSERVICE_REQUESTS
        ).items()
    }
    assert by_method == {("predict", "200"): 1.0, ("feedback", "200"): 1.0, ("predict", "500"): 1.0}


PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: its identifiers outside label matchers,
    strings, ranges and grouping clauses that are not functions or keywords."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        after = expr[match.end() :].lstrip()
        if not after.startswith("(") and match.group() not in PROMQL_WORDS:
            names.add(match.group())
    return names


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    exprs = [t["expr"] for p in panels(dashboard["panels"]) for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        found = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["query"]["query"])
        assert found, variable
        exprs.append(found.group(1))
    return exprs


def test_the_grafana_dashboard_reads_only_metrics_we_export(gw: Gateway, component: Server) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = dashboard_queries(dashboard)
    assert len(exprs) >= 10
    # traffic that makes every family have samples: predictions and feedback through an A/B test
    url = f"{gw.url}/seldon/myabtest/api/v1.0"
    with httpx.Client(timeout=10) as client:
        for _ in range(10):
            answer = client.post(f"{url}/predictions", json=ROW).json()
            feedback = {"request": ROW, "response": answer, "reward": 1.0}
            assert client.post(f"{url}/feedback", json=feedback).status_code == 200
    assert httpx.post(
        f"{component.url}/predict", json={"data": {"ndarray": [[1.0, 2.0, 3.0, 4.0]]}}
    ).is_success

    def exported() -> set[str]:
        families = scrape(gw.admin_url + "/prometheus") + scrape(f"{component.url}/metrics")
        return {s.name for family in families for s in family.samples}

    wait_until(lambda: "seldon_experiment_reward_mean" in exported(), "the A/B statistics published")
    names = exported()
    used = set().union(*map(metric_names, exprs))
    assert {"seldon_api_executor_client_requests_seconds_bucket", "seldon_experiment_requests"} <= used
    assert used <= names, f"the dashboard reads metrics no server exports: {sorted(used - names)}"
