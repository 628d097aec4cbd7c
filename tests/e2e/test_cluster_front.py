"""The OAuth front end of a cluster install (`seldon serve --oauth --cluster-engines`): the
operator stores each SeldonDeployment in the install's Redis; the front end checks tokens and
forwards to the predictor's engine, whose answer (routing, requestPath) comes back whole, so
feedback through the front end reaches the engine's router."""

from __future__ import annotations

import base64
import itertools
import json
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from seldon_serving.deploy.k8s.front import ENGINE_ADDRESS, front_manifest, register_with_front
from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol._pb import prediction_pb2_grpc as pb_grpc
from seldon_serving.state import open_store
from tests import helpers
from tests.helpers import free_port, seldon_bin

pytestmark = pytest.mark.slow

_databases = itertools.count(8)
REQUEST = {"data": {"ndarray": [[1.0, 2.0]]}}


@pytest.fixture
def store(redis_url: str) -> str:
    import redis

    url = redis_url.rsplit("/", 1)[0] + f"/{next(_databases)}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


def manifest(router_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "machinelearning.seldon.io/v1alpha2",
        "kind": "SeldonDeployment",
        "metadata": {"name": "mymab"},
        "spec": {
            "name": "mymab",
            "oauth_key": "key",
            "oauth_secret": "secret",
            "predictors": [
                {
                    "name": "main",
                    "componentSpecs": [
                        {
                            "spec": {
                                "containers": [
                                    {"name": "eg-router", "image": "seldonio/mab_epsilon_greedy:1.1"}
                                ]
                            }
                        }
                    ],
                    "graph": {
                        "name": "eg-router",
                        "type": "ROUTER",
                        "endpoint": {
                            "service_host": "127.0.0.1",
                            "service_port": router_port,
                            "type": "REST",
                        },
                        "parameters": [
                            {"name": "n_branches", "value": "2", "type": "INT"},
                            {"name": "epsilon", "value": "0", "type": "FLOAT"},
                        ],
                        "children": [
                            {"name": "a", "type": "MODEL", "implementation": "SIMPLE_MODEL"},
                            {"name": "b", "type": "MODEL", "implementation": "SIMPLE_MODEL"},
                        ],
                    },
                }
            ],
        },
    }


def test_front_end_checks_tokens_and_forwards_to_the_engine(
    store: str, tmp_path: Path, start_microservice: Any
) -> None:
    parameters = json.dumps(manifest(0)["spec"]["predictors"][0]["graph"]["parameters"])
    router = start_microservice(
        "seldon_serving.components.builtin.EpsilonGreedy",
        "--parameters",
        parameters,
        service_type="ROUTER",
        env={"PREDICTIVE_UNIT_ID": "eg-router"},  # what the operator sets: its routing key
    )
    sdep = manifest(router.http_port)
    predictor = base64.b64encode(json.dumps(sdep["spec"]["predictors"][0]).encode()).decode()
    engine_http, engine_grpc = free_port(), free_port()
    engine_env = {
        "ENGINE_PREDICTOR": predictor,
        "DEPLOYMENT_NAME": "mymab",
        "ENGINE_SERVER_PORT": str(engine_http),
        "ENGINE_SERVER_GRPC_PORT": str(engine_grpc),
    }
    # What the operator does: store the deployment for the front end, its engine's address in
    # cluster DNS, which this machine reaches as 127.0.0.1 (the one substitution).
    stored = front_manifest(sdep, "default")
    assert stored["spec"]["predictors"][0]["annotations"] == {
        ENGINE_ADDRESS: "mymab-main.default.svc.cluster.local.:8000"
    }
    stored["spec"]["predictors"][0]["annotations"][ENGINE_ADDRESS] = f"127.0.0.1:{engine_http}"
    shared = open_store(store)
    try:
        assert register_with_front(shared, stored, "default", "mymab") == "created"
        assert register_with_front(shared, stored, "default", "mymab") == "unchanged"
    finally:
        shared.close()
    args = ["--oauth", "--cluster-engines", "--state-store", store]
    with (
        helpers.running(
            [seldon_bin(), "engine", "--host", "127.0.0.1"],
            env=engine_env,
            ready_url=f"http://127.0.0.1:{engine_http}/ready",
        ),
        helpers.gateway(state_dir=tmp_path / "front", args=args) as front,
        httpx.Client(timeout=30) as client,
    ):
        refused = client.post(f"{front.url}/api/v0.1/predictions", json=REQUEST)
        assert refused.status_code == 401
        token = client.post(
            f"{front.url}/oauth/token", auth=("key", "secret"), data={"grant_type": "client_credentials"}
        )
        assert token.status_code == 200, token.text
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}

        answer = client.post(f"{front.url}/api/v0.1/predictions", json=REQUEST, headers=bearer).json()
        # The engine's own meta, whole: its router's branch and every node it visited.
        assert set(answer["meta"]["routing"]) == {"eg-router"}
        assert set(answer["meta"]["requestPath"]) >= {"eg-router"}
        # Reward branch 1 through the front end: the engine's router learns (epsilon 0: greedy).
        rewarded = {**answer, "meta": {**answer["meta"], "routing": {"eg-router": 1}}}
        for _ in range(3):
            feedback = {"request": REQUEST, "response": rewarded, "reward": 1.0}
            sent = client.post(f"{front.url}/api/v0.1/feedback", json=feedback, headers=bearer)
            assert sent.status_code == 200, sent.text
        for _ in range(5):
            again = client.post(f"{front.url}/api/v0.1/predictions", json=REQUEST, headers=bearer).json()
            assert again["meta"]["routing"] == {"eg-router": 1}

        with grpc.insecure_channel(front.grpc) as channel:
            message = pb.SeldonMessage()
            message.data.ndarray.values.add().list_value.values.add().number_value = 1.0
            metadata = [("oauth_token", token.json()["access_token"])]
            reply = pb_grpc.SeldonStub(channel).Predict(message, metadata=metadata, timeout=10)
            assert reply.meta.routing["eg-router"] == 1
