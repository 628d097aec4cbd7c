"""The seed's four prototypes, rendered for a cluster and run as processes (tests/k8s/pods.py),
called through the Ambassador Mappings the way the seed calls them: curl at
/seldon/<name>/api/v0.1/predictions and Seldon's own SeldonClient over REST and gRPC.

This proves what YAML validation cannot: the injected env, ports, ENGINE_PREDICTOR, probes
and the Mappings together make a deployment that answers.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seldon_serving.deploy.k8s.render import RenderOptions, render_manifest
from seldon_serving.spec import generate
from tests.compat.conftest import run_seldon_client
from tests.helpers import compat_python
from tests.k8s.ambassador import Ambassador, ambassador
from tests.k8s.pods import ProcessCluster

pytestmark = pytest.mark.slow

IMAGE = "registry.test/seldon-serving:test"
MOCK = "seldonio/mock_classifier:1.0"
IMAGES = {
    "image": MOCK,
    "image_a": MOCK,
    "image_b": MOCK,
    "mab_image": "seldonio/mab_epsilon_greedy:1.1",
    "outlier_detector_image": "seldonio/outlier_mahalanobis:0.3",
}
# The seed's example request (SC notebooks), shaped for the mock classifier's 1 feature... any width works.
REQUEST = {"data": {"names": ["a", "b"], "tensor": {"shape": [1, 2], "values": [0.1, 0.2]}}}


def manifest(prototype: str, name: str, version: str) -> dict[str, Any]:
    doc = generate(prototype, name, api_version=version, **IMAGES)
    (sdep,) = [item for item in doc["items"] if item["kind"] == "SeldonDeployment"]
    return sdep


@pytest.fixture
def deployed(
    request: pytest.FixtureRequest, redis_url: str, tmp_path: Path
) -> Iterator[tuple[ProcessCluster, Ambassador]]:
    prototype, name, version = request.param
    objects = render_manifest(
        manifest(prototype, name, version), "default", RenderOptions(runtime_image=IMAGE)
    )
    with (
        ProcessCluster(objects, runtime_image=IMAGE, redis_url=redis_url, workdir=tmp_path) as cluster,
        ambassador(objects, cluster.resolve) as proxy,
    ):
        yield cluster, proxy


def curl(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The seed's call, with the real curl."""
    out = subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-H", "Content-Type: application/json",
         "-d", json.dumps(body), url],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    text, _, code = out.stdout.rpartition("\n")
    return int(code), json.loads(text)


def seldon_client(proxy: Ambassador, name: str) -> list[dict[str, Any]]:
    """SeldonClient (seldon-core 1.18) through Ambassador, over REST then gRPC: one predict each."""
    python = compat_python()
    assert python.exists(), f"no seldon-core venv at {python}: run scripts/compat-venv.sh"
    calls = []
    for transport, port in (("rest", proxy.http_port), ("grpc", proxy.grpc_port)):
        client = {
            "gateway": "ambassador",
            "transport": transport,
            "deployment_name": name,
            "namespace": "default",
            "gateway_endpoint": f"127.0.0.1:{port}",
        }
        calls.append({"call": "predict", "client": client, "kwargs": {"data": [[0.1, 0.2]]}})
    return run_seldon_client(python, calls, tensorflow=False)


def predict_everywhere(proxy: Ambassador, name: str) -> list[dict[str, Any]]:
    """curl at the seed's path, then SeldonClient over REST and gRPC: the three answers."""
    code, answer = curl(f"http://127.0.0.1:{proxy.http_port}/seldon/{name}/api/v0.1/predictions", REQUEST)
    assert code == 200, answer
    answers = [answer]
    for result in seldon_client(proxy, name):
        assert result["success"], result["msg"]
        answers.append(result["response"])
    return answers


def proba(answer: dict[str, Any]) -> float:
    data = answer["data"]
    values = data["tensor"]["values"] if "tensor" in data else data["ndarray"][0]
    return float(values[0])


@pytest.mark.parametrize(
    "deployed",
    [("serve-simple", "mymodel", "v1alpha2"), ("serve-simple", "mymodel", "v1alpha1")],
    indirect=True,
)
def test_serve_simple_answers_through_ambassador(deployed: tuple[ProcessCluster, Ambassador]) -> None:
    cluster, proxy = deployed
    for answer in predict_everywhere(proxy, "mymodel"):
        assert answer["meta"]["requestPath"] == {"mymodel": MOCK}
        assert 0.0 < proba(answer) < 1.0
    assert cluster.live() == []
    # Both Mapping families were used: un-namespaced (curl, the seed) and namespaced (SeldonClient).
    assert "seldon_mymodel_rest_mapping" in proxy.routed
    assert "seldon_default_mymodel_rest_mapping" in proxy.routed
    assert "seldon_default_mymodel_grpc_mapping" in proxy.routed


@pytest.mark.parametrize(
    "deployed", [("abtest", "myab", "v1alpha2"), ("abtest", "myab", "v1alpha1")], indirect=True
)
def test_abtest_splits_between_the_two_classifier_pods(deployed: tuple[ProcessCluster, Ambassador]) -> None:
    _, proxy = deployed
    seen = set()
    for _ in range(30):
        code, answer = curl(f"http://127.0.0.1:{proxy.http_port}/seldon/myab/api/v0.1/predictions", REQUEST)
        assert code == 200, answer
        (branch,) = answer["meta"]["routing"].values()
        seen.add(branch)
        assert set(answer["meta"]["requestPath"]) == {"random-ab-test", f"classifier-{branch + 1}"}
    assert seen == {0, 1}  # ratioA 0.5: 30 calls reach both (chance of not: 2 * 0.5**30)
    for answer in predict_everywhere(proxy, "myab")[1:]:
        assert "random-ab-test" in answer["meta"]["routing"]


@pytest.mark.parametrize("deployed", [("mab", "mymab", "v1alpha2")], indirect=True)
def test_mab_router_learns_from_feedback_in_the_install_redis(
    deployed: tuple[ProcessCluster, Ambassador], redis_url: str
) -> None:
    import redis

    _, proxy = deployed
    answers = predict_everywhere(proxy, "mymab")
    for answer in answers:
        assert "eg-router" in answer["meta"]["routing"]
    # Feedback through Ambassador reaches the router container; its state is in the install's
    # Redis under the key the gateway would use for the same node (replicas share it).
    base = f"http://127.0.0.1:{proxy.http_port}/seldon/mymab/api/v0.1"
    for answer in answers:
        code, _ = curl(f"{base}/feedback", {"request": REQUEST, "response": answer, "reward": 1.0})
        assert code == 200
    client = redis.Redis.from_url(redis_url)
    try:
        keys = [k.decode() for k in client.scan_iter(match="*default/mymab/mymab/eg-router*")]
    finally:
        client.close()
    assert keys, "the router's state is not in the install's Redis"


@pytest.mark.parametrize(
    "deployed",
    [("outlier-detector", "mymodel", "v1alpha2"), ("outlier-detector", "mymodel", "v1alpha1")],
    indirect=True,
)
def test_outlier_detector_scores_every_request(deployed: tuple[ProcessCluster, Ambassador]) -> None:
    cluster, proxy = deployed
    for answer in predict_everywhere(proxy, "mymodel"):
        assert "outlierScore" in answer["meta"]["tags"]
        assert answer["meta"]["routing"] == {"outlier-detector": -1}
        assert set(answer["meta"]["requestPath"]) == {"outlier-detector", "mymodel"}
    assert cluster.live() == []


@pytest.mark.parametrize("deployed", [("serve-simple", "mymodel", "v1alpha2")], indirect=True)
def test_engine_pause_takes_the_pod_out_of_rotation(deployed: tuple[ProcessCluster, Ambassador]) -> None:
    """What the engine's preStop hook does before the pod stops: /ready fails, /live holds."""
    import httpx

    cluster, _ = deployed
    (pod,) = [p for p in cluster.pods if "seldon-app" in p.labels]
    (engine,) = [c for c in pod.containers if c["name"] == "seldon-container-engine"]
    port = pod.port(8000)
    assert httpx.get(f"http://127.0.0.1:{port}/pause").text == "paused"
    assert httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 503
    assert cluster.live() == []
    assert httpx.get(f"http://127.0.0.1:{port}/unpause").text == "unpaused"
    assert httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200
    assert engine["lifecycle"]["preStop"]["exec"]["command"]


def test_a_rendered_sklearn_server_reads_its_claim_and_answers_what_sklearn_answers(
    redis_url: str, tmp_path: Path
) -> None:
    from tests.trained_models import save_sklearn_logistic

    claim = tmp_path / "claim-models"
    trained = save_sklearn_logistic(claim / "iris" / "lr")
    doc = {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": "iris"},
        "spec": {
            "predictors": [
                {
                    "name": "default",
                    "replicas": 1,
                    "graph": {
                        "name": "clf",
                        "implementation": "SKLEARN_SERVER",
                        "modelUri": "pvc://models/iris/lr",
                    },
                }
            ]
        },
    }
    objects = render_manifest(doc, "default", RenderOptions(runtime_image=IMAGE))
    rows = trained.rows[:4]
    expected = trained.framework_answer(rows)
    with (
        ProcessCluster(
            objects,
            runtime_image=IMAGE,
            redis_url=redis_url,
            workdir=tmp_path / "pods",
            claims={"models": claim},
        ) as cluster,
        ambassador(objects, cluster.resolve) as proxy,
    ):
        body = {"data": {"ndarray": rows.tolist()}}
        code, answer = curl(f"http://127.0.0.1:{proxy.http_port}/seldon/iris/api/v0.1/predictions", body)
        assert code == 200, answer
        assert answer["meta"]["requestPath"] == {"clf": "SKLEARN_SERVER"}
        got = [row for row in answer["data"]["ndarray"]]
        assert len(got) == len(expected)
        for served_row, sklearn_row in zip(got, expected.tolist(), strict=True):
            assert served_row == pytest.approx(sklearn_row, abs=1e-9)
        (client_rest, client_grpc) = run_seldon_client(
            compat_python(),
            [
                {
                    "call": "predict",
                    "client": {
                        "gateway": "ambassador",
                        "transport": transport,
                        "deployment_name": "iris",
                        "namespace": "default",
                        "gateway_endpoint": f"127.0.0.1:{port}",
                    },
                    "kwargs": {"data": rows.tolist()},
                }
                for transport, port in (("rest", proxy.http_port), ("grpc", proxy.grpc_port))
            ],
            tensorflow=False,
        )
        for result in (client_rest, client_grpc):
            assert result["success"], result["msg"]
            data = result["response"]["data"]
            values = (
                data["tensor"]["values"] if "tensor" in data else [v for row in data["ndarray"] for v in row]
            )
            assert values == pytest.approx(expected.ravel().tolist(), abs=1e-9)
        assert cluster.live() == []
