"""`--state-store redis://...`: replicas on different machines (here: processes with nothing on
disk in common) share deployments, router state and OAuth tokens through one Redis."""

from __future__ import annotations

import itertools
from pathlib import Path

import httpx
import pytest

from tests import helpers
from tests.e2e.test_seed_examples import MOCK, generate

pytestmark = pytest.mark.slow

_databases = itertools.count(1)  # Redis has 16 numbered databases: one per test keeps them apart


@pytest.fixture
def store(redis_url: str) -> str:
    import redis

    url = redis_url.rsplit("/", 1)[0] + f"/{next(_databases)}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


def test_two_gateways_share_deployments_and_the_bandit_state(store: str, tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    generate(manifests, ["mab", "--imageA", MOCK, "--imageB", MOCK], "mymab")
    request = {"data": {"ndarray": [[1.0, 2.0]]}}
    with (
        helpers.gateway(manifests, state_dir=tmp_path / "a", args=["--state-store", store]) as first,
        helpers.gateway(state_dir=tmp_path / "b", args=["--state-store", store]) as second,
        httpx.Client(timeout=30) as client,
    ):
        # The second was started with no manifest: it serves what the first stored in Redis.
        helpers.wait_until(
            lambda: (
                client.post(f"{second.url}/seldon/mymab/api/v0.1/predictions", json=request).status_code
                == 200
            ),
            "the second gateway serves mymab",
        )
        # Rewards sent to one gateway teach the router that answers on the other.
        for _ in range(150):
            answer = client.post(f"{first.url}/seldon/mymab/api/v0.1/predictions", json=request).json()
            branch = answer["meta"]["routing"]["eg-router"]
            feedback = {"request": request, "response": answer, "reward": 1.0 if branch == 1 else 0.0}
            assert (
                client.post(f"{first.url}/seldon/mymab/api/v0.1/feedback", json=feedback).status_code == 200
            )
        chosen = [
            client.post(f"{second.url}/seldon/mymab/api/v0.1/predictions", json=request).json()["meta"][
                "routing"
            ]["eg-router"]
            for _ in range(100)
        ]
        assert chosen.count(1) >= 70, (
            f"the second gateway routed only {chosen.count(1)}% to the rewarded branch"
        )
        # Pausing one replica (its preStop hook) takes only that one out of rotation.
        assert client.get(f"{first.admin_url}/pause").text == "paused"
        assert client.get(f"{first.url}/ready").status_code == 503
        assert client.get(f"{second.url}/ready").status_code == 200
        assert client.get(f"{first.admin_url}/unpause").text == "unpaused"
        # A deployment deleted through one is gone from the other.
        assert first.cli("delete", "mymab").returncode == 0
        helpers.wait_until(
            lambda: (
                client.post(f"{second.url}/seldon/mymab/api/v0.1/predictions", json=request).status_code
                == 404
            ),
            "mymab deleted on the second gateway too",
        )
    assert not (tmp_path / "a" / "state.db").exists()  # nothing was kept on local disk


def test_oauth_token_from_one_replica_works_on_the_other(store: str, tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    path = generate(
        manifests, ["serve-simple", "--image", MOCK, "--oauthKey", "key", "--oauthSecret", "secret"], "m"
    )
    assert "oauth_key: key" in path.read_text()
    args = ["--state-store", store, "--oauth"]
    with (
        helpers.gateway(manifests, state_dir=tmp_path / "a", args=args) as first,
        helpers.gateway(state_dir=tmp_path / "b", args=args) as second,
        httpx.Client(timeout=30) as client,
    ):
        token = client.post(
            f"{first.url}/oauth/token", auth=("key", "secret"), data={"grant_type": "client_credentials"}
        )
        assert token.status_code == 200, token.text
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        body = {"data": {"ndarray": [[1.0, 2.0]]}}
        helpers.wait_until(
            lambda: (
                client.post(f"{second.url}/api/v0.1/predictions", json=body, headers=bearer).status_code
                == 200
            ),
            "the token from the first replica is accepted by the second",
        )


def test_router_replicas_learn_as_one(store: str, tmp_path: Path) -> None:
    """Two replicas of a router container (as a Deployment with replicas: 2 runs them), keyed by
    the environment the operator gives them: a reward sent to one steers the other."""
    env = {
        "SELDON_DEPLOYMENT_ID": "mymab",
        "PREDICTOR_ID": "main",
        "PREDICTIVE_UNIT_ID": "eg-router",
        "DEPLOYMENT_NAMESPACE": "team-a",
        "PREDICTIVE_UNIT_PARAMETERS": '[{"name":"n_branches","value":"2","type":"INT"},'
        '{"name":"epsilon","value":"0","type":"FLOAT"}]',
    }
    router = "seldon_serving.components.builtin.EpsilonGreedy"
    args = ("--state-store", store)
    request = {"data": {"ndarray": [[1.0]]}}
    with (
        helpers.microservice(router, *args, service_type="ROUTER", env=env, cwd=tmp_path) as one,
        helpers.microservice(router, *args, service_type="ROUTER", env=env, cwd=tmp_path) as two,
        httpx.Client(timeout=30) as client,
    ):
        for _ in range(5):
            feedback = {
                "request": request,
                "response": {"meta": {"routing": {"eg-router": 1}}},
                "reward": 1.0,
            }
            assert client.post(f"{one.url}/send-feedback", json=feedback).status_code == 200
        routes = [client.post(f"{two.url}/route", json=request).json() for _ in range(10)]
        assert {r["data"]["ndarray"][0][0] for r in routes} == {1}, routes
    import redis

    client_ = redis.Redis.from_url(store)
    try:
        assert any(b"team-a/mymab/main/eg-router" in key for key in client_.keys("*"))
    finally:
        client_.close()
