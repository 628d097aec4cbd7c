"""`seldon serve` over real ports with the seed's four prototypes: what a user of Seldon's
gateway (Ambassador + engine) notices, over REST and gRPC."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import empty_pb2

from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol._pb import prediction_pb2_grpc as pb_grpc
from tests.deploy.gateway import EXAMPLES, Gateway, example_model, gateway, write

pytestmark = pytest.mark.slow

ROW = [1.0, 2.0]
PROBA = 1 / (1 + math.exp(-(1.5 - 35 / 12)))  # seldonio/mock_classifier for [1, 2]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with gateway(EXAMPLES, state_dir=tmp_path_factory.mktemp("state"), workers=2) as g:
        yield g


def predict(g: Gateway, path: str, body: dict | None = None) -> httpx.Response:
    return httpx.post(
        g.url + path, json=body or {"data": {"names": ["a", "b"], "ndarray": [ROW]}}, timeout=10
    )


def states(g: Gateway) -> dict[str, str]:
    """NAME -> STATE from `seldon get`."""
    lines = g.cli("get").stdout.splitlines()[1:]
    return {line.split()[0]: line.split()[1] for line in lines}


def grpc_request() -> pb.SeldonMessage:
    request = pb.SeldonMessage()
    request.data.tensor.shape.extend([1, 2])
    request.data.tensor.values.extend(ROW)
    return request


def test_rest_predict_on_every_prototype_and_path_form(gw: Gateway) -> None:
    for path in (
        "/seldon/mymodel/api/v0.1/predictions",
        "/seldon/mymodel/api/v1.0/predictions",
        "/seldon/default/mymodel/api/v1.0/predictions",
        "/seldon/default/mymodel/api/v0.1/predictions",
    ):
        r = predict(gw, path)
        assert r.status_code == 200, path
        body = r.json()
        assert body["data"]["names"] == ["proba"]
        assert body["data"]["ndarray"][0][0] == pytest.approx(PROBA)
        assert body["meta"]["requestPath"] == {"mymodel": "seldonio/mock_classifier:1.0"}
        assert len(body["meta"]["puid"]) > 10

    body = predict(gw, "/seldon/myout/api/v0.1/predictions").json()
    assert body["meta"]["routing"] == {"outlier-detector": -1}
    assert set(body["meta"]["requestPath"]) == {"outlier-detector", "myout"}
    assert "outlierScore" in body["meta"]["tags"]
    assert body["data"]["ndarray"][0][0] == pytest.approx(PROBA)

    seen = set()
    for _ in range(30):
        body = predict(gw, "/seldon/myabtest/api/v0.1/predictions").json()
        seen.add(body["meta"]["routing"]["random-ab-test"])
        assert body["data"]["ndarray"][0][0] == pytest.approx(PROBA)
    assert seen == {0, 1}


def test_mab_feedback_over_rest_and_grpc(gw: Gateway) -> None:
    request = {"data": {"ndarray": [ROW]}}
    r = predict(gw, "/seldon/mymab/api/v0.1/predictions", request)
    answer = r.json()
    branch = answer["meta"]["routing"]["eg-router"]
    assert branch in (0, 1)
    r = httpx.post(
        gw.url + "/seldon/mymab/api/v0.1/feedback",
        json={"request": request, "response": answer, "reward": 1.0},
    )
    assert r.status_code == 200 and r.json() == {}

    with grpc.insecure_channel(gw.grpc) as channel:
        stub = pb_grpc.SeldonStub(channel)
        response = stub.Predict(grpc_request(), metadata=[("seldon", "mymab")], timeout=10)
        assert response.data.tensor.values[0] == pytest.approx(PROBA)
        assert set(response.meta.routing) == {"eg-router"}
        feedback = pb.Feedback(request=grpc_request(), response=response, reward=1.0)
        empty = stub.SendFeedback(
            feedback, metadata=[("seldon", "mymab"), ("namespace", "default")], timeout=10
        )
        assert empty == pb.SeldonMessage()

    metrics = httpx.get(gw.admin_url + "/prometheus").text
    assert 'seldon_api_model_feedback_total{deployment_name="mymab"' in metrics
    assert 'model_name="eg-router"' in metrics
    assert 'seldon_api_executor_server_requests_seconds_count{code="200",deployment_name="mymab"' in metrics


def test_grpc_predict_metadata_and_not_found(gw: Gateway) -> None:
    with grpc.insecure_channel(gw.grpc) as channel:
        stub = pb_grpc.SeldonStub(channel)
        answer = stub.Predict(grpc_request(), metadata=[("seldon", "myout")], timeout=10)
        assert answer.data.WhichOneof("data_oneof") == "tensor"  # the request's form is kept
        assert dict(answer.meta.routing) == {"outlier-detector": -1}
        graph = stub.GraphMetadata(empty_pb2.Empty(), metadata=[("seldon", "myout")], timeout=10)
        assert set(graph.models) == {"outlier-detector", "myout"}
        model = stub.ModelMetadata(
            pb.SeldonModelMetadataRequest(name="myout"), metadata=[("seldon", "myout")]
        )
        assert model.name == "seldonio/mock_classifier" and list(model.versions) == ["1.0"]
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(grpc_request(), metadata=[("seldon", "nope")], timeout=10)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert "'nope'" in caught.value.details()
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(grpc_request(), timeout=10)  # four deployments: which one?
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    # the detector's custom metrics reach Prometheus, labelled with the node that sent them
    metrics = httpx.get(gw.admin_url + "/metrics").text
    assert any(
        line.startswith("outlier_score{") and 'model_name="outlier-detector"' in line
        for line in metrics.splitlines()
    )


def test_unknown_deployment_and_bad_body_keep_seldons_error_shape(gw: Gateway) -> None:
    r = predict(gw, "/seldon/nope/api/v1.0/predictions")
    assert r.status_code == 404
    status = r.json()["status"]
    assert status["status"] == "FAILURE" and "'nope'" in status["info"] and set(r.json()) == {"status"}

    r = httpx.post(gw.url + "/seldon/mymodel/api/v0.1/predictions", content=b"{oops")
    assert r.status_code == 400 and r.json()["status"]["status"] == "FAILURE"
    r = predict(gw, "/seldon/mymodel/api/v0.1/predictions", {"data": {"ndarray": [["x", "y"]]}})
    assert r.status_code >= 400 and "mymodel" in r.json()["status"]["info"]


def test_engine_health_pause_and_openapi(gw: Gateway) -> None:
    assert httpx.get(gw.url + "/ping").text == "pong"
    assert httpx.get(gw.url + "/live").text == "live"
    assert httpx.get(gw.url + "/ready").text == "ready"
    try:
        assert httpx.get(gw.admin_url + "/pause").text == "paused"
        # every worker leaves rotation (each GET may land on either of the two workers)
        assert all(httpx.get(gw.url + "/ready").status_code == 503 for _ in range(6))
        assert predict(gw, "/seldon/mymodel/api/v0.1/predictions").status_code == 200  # still answers
    finally:
        assert httpx.get(gw.admin_url + "/unpause").text == "unpaused"
    assert all(httpx.get(gw.url + "/ready").status_code == 200 for _ in range(6))
    paths = httpx.get(gw.url + "/openapi.json").json()["paths"]
    assert "/seldon/{deployment}/api/v0.1/predictions" in paths


def test_apply_swaps_the_graph_in_every_worker(gw: Gateway, tmp_path: Path) -> None:
    manifest = write(tmp_path, "swap.yaml", example_model("swap"))
    result = gw.cli("apply", "-f", str(manifest))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "seldondeployment/swap created"
    assert all(predict(gw, "/seldon/swap/api/v0.1/predictions").status_code == 200 for _ in range(4))

    write(tmp_path, "swap.yaml", example_model("swap", intValue=-2))
    result = gw.cli("apply", "-f", str(manifest))
    assert result.stdout.strip() == "seldondeployment/swap configured"
    expected = 1 / (1 + math.exp(-(1.5 - 35 / 12 + 2)))
    for _ in range(6):  # new connections: both workers must serve the new graph already
        body = predict(gw, "/seldon/swap/api/v0.1/predictions").json()
        assert body["data"]["ndarray"][0][0] == pytest.approx(expected)
    assert gw.cli("apply", "-f", str(manifest)).stdout.strip() == "seldondeployment/swap unchanged"

    table = gw.cli("get").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATE", "AGE", "PREDICTORS"]
    assert any(line.split()[:2] == ["swap", "Available"] for line in table)
    shown = gw.cli("get", "swap", "-o", "json")
    assert '"generation": 2' in shown.stdout and '"state": "Available"' in shown.stdout

    assert gw.cli("delete", "swap").stdout.strip() == 'seldondeployment "swap" deleted'
    assert all(predict(gw, "/seldon/swap/api/v0.1/predictions").status_code == 404 for _ in range(4))


def test_a_deployment_that_cannot_start_fails_alone(gw: Gateway, tmp_path: Path) -> None:
    broken = example_model("broken")
    container = broken["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]
    container["env"] = [{"name": "MODEL_NAME", "value": "NoSuchModel"}]
    result = gw.cli("apply", "-f", str(write(tmp_path, "broken.yaml", broken)))
    try:
        assert result.returncode == 1
        assert result.stdout.strip() == "seldondeployment/broken created"
        assert "NoSuchModel" in result.stderr and "Traceback" not in result.stderr
        r = predict(gw, "/seldon/broken/api/v0.1/predictions")
        assert r.status_code == 404 and "NoSuchModel" in r.json()["status"]["info"]
        assert httpx.get(gw.url + "/ready").status_code == 503
        assert states(gw)["broken"] == "Failed"
        assert predict(gw, "/seldon/mymodel/api/v0.1/predictions").status_code == 200  # others unaffected
    finally:
        gw.cli("delete", "broken")
    assert httpx.get(gw.url + "/ready").status_code == 200


def test_cli_without_a_server_says_so_in_one_sentence(tmp_path: Path) -> None:
    import subprocess

    from tests.helpers import free_port, seldon_bin

    result = subprocess.run(
        [seldon_bin(), "get", "--server", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no Seldon Serving server answers at")


def test_deployments_come_back_after_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    manifest = write(tmp_path / "m", "again.json", example_model("again"))
    with gateway(state_dir=state) as g:
        assert predict(g, "/seldon/again/api/v0.1/predictions").status_code == 404
        applied = g.cli("apply", "-f", "-", stdin=manifest.read_text())  # kubectl apply -f - style
        assert applied.stdout.strip() == "seldondeployment/again created"
        first = predict(g, "/api/v1.0/predictions").json()  # only one deployment: no name needed
    with gateway(state_dir=state) as g:  # no files given: everything comes from the state dir
        again = predict(g, "/seldon/again/api/v0.1/predictions").json()
        assert again["data"] == first["data"]
        assert states(g) == {"again": "Available"}


def test_a_bad_manifest_refuses_to_start_in_one_sentence(tmp_path: Path) -> None:
    import subprocess

    from tests.helpers import seldon_bin

    doc = example_model("bad")
    doc["spec"]["predictors"][0]["graph"]["type"] = "MODLE"
    path = write(tmp_path, "bad.yaml", doc)
    result = subprocess.run(
        [seldon_bin(), "serve", str(path), "--state-dir", str(tmp_path / "s"), "--http-port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and result.stderr.startswith(
        "error: "
    )
    assert "bad.yaml" in result.stderr and "spec.predictors[0].graph.type" in result.stderr
    assert "MODLE" in result.stderr
