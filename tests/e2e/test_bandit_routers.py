"""The routers of issue 15 learn through `seldon serve --workers 2`, made by `seldon generate mab
--router NAME`: UCB1 and decaying epsilon find the better of two branches, LINUCB the better
branch for each request's feature, and every feedback is counted exactly once across workers."""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest

from tests.e2e.test_seed_examples import MOCK, Gateway, generate, serve
from tests.helpers import seldon_bin

pytestmark = pytest.mark.slow

ROUTERS = {  # deployment -> --router
    "mab-ucb1": "UCB1",
    "mab-ucb1-tuned": "UCB1_TUNED",
    "mab-eg": "EPSILON_GREEDY",
    "mab-ts": "THOMPSON_SAMPLING",
    "mab-linucb": "LINUCB",
}
NODE = "mab-router"  # the router node `generate mab --router` writes


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("routers")
    with ThreadPoolExecutor(max_workers=len(ROUTERS)) as pool:
        for future in [
            pool.submit(
                generate, directory, ["mab", "--imageA", MOCK, "--imageB", MOCK], name, "--router", router
            )
            for name, router in ROUTERS.items()
        ]:
            future.result()
    yield from serve(directory, workers=2)


def tries(gateway: Gateway, name: str) -> list[float]:
    """The router's tries per branch, as `seldon get NAME -o json` shows them."""
    out = subprocess.run(
        [seldon_bin(), "get", name, "-o", "json", "--server", gateway.admin_url],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    found: list[list[float]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("name") == NODE and isinstance(node.get("state"), dict):
                found.append([b["tries"] for b in node["state"]["branches"]])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(out))
    assert found, f"no state of node {NODE} in `seldon get {name} -o json`: {out[:500]}"
    return found[0]


def play(gateway: Gateway, name: str, rounds: int, reward: Any, features: Any) -> list[tuple[float, int]]:
    """`rounds` predictions, each followed by its feedback: (feature, branch) of every round."""
    seen = []
    with httpx.Client(timeout=30) as client:  # one keep-alive client per thread
        for t in range(rounds):
            f = features(t)
            request = {"data": {"ndarray": [[f, 1.0]]}}
            r = client.post(f"{gateway.url}/seldon/{name}/api/v0.1/predictions", json=request)
            assert r.status_code == 200, r.text
            answer = r.json()
            branch = answer["meta"]["routing"][NODE]
            body = {"request": request, "response": answer, "reward": reward(t, f, branch)}
            r = client.post(f"{gateway.url}/seldon/{name}/api/v0.1/feedback", json=body)
            assert r.status_code == 200, r.text
            seen.append((f, branch))
    return seen


def bernoulli_table(seed: int, rounds: int) -> list[tuple[float, float]]:
    """Rewards 0.5 (branch 0) vs 0.9 (branch 1) drawn once per round and branch: a fixed environment."""
    rng = random.Random(seed)
    return [(float(rng.random() < 0.5), float(rng.random() < 0.9)) for _ in range(rounds)]


def contextual(rounds: int) -> tuple[np.ndarray, Any]:
    """Features f ~ U(0, 1) and rewards where branch 0 pays with probability 0.9 - 0.8 f and branch
    1 with 0.1 + 0.8 f: branch 0 is better for f < 0.5, branch 1 above, both 0.5 on average."""
    features = np.random.default_rng(11).random(rounds)
    draws = np.random.default_rng(12).random(rounds)

    def reward(t: int, f: float, branch: int) -> float:
        return float(draws[t] < (0.9 - 0.8 * f if branch == 0 else 0.1 + 0.8 * f))

    return features, reward


@pytest.fixture(scope="module")
def played(gateway: Gateway) -> dict[str, list[tuple[float, int]]]:
    """Every deployment's rounds, all played at once (the server is shared; so is the time)."""
    table = bernoulli_table(7, 500)
    features, reward = contextual(1200)
    jobs: dict[str, Any] = {
        "mab-ucb1": lambda: play(gateway, "mab-ucb1", 500, lambda t, f, b: table[t][b], lambda t: 0.0),
        "mab-eg": lambda: play(gateway, "mab-eg", 500, lambda t, f, b: table[t][b], lambda t: 0.0),
        "mab-linucb": lambda: play(gateway, "mab-linucb", 1200, reward, lambda t: float(features[t])),
    }
    # Four clients at once on one router, so both workers update its shared counts together.
    for name in ("mab-ucb1-tuned", "mab-ts"):
        for i in range(4):
            jobs[f"{name}#{i}"] = lambda name=name: play(
                gateway, name, 50, lambda t, f, b: float(b == 1), lambda t: 0.0
            )
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {key: pool.submit(job) for key, job in jobs.items()}
    return {key: future.result() for key, future in futures.items()}


@pytest.mark.parametrize("name", ["mab-ucb1", "mab-eg"])
def test_ucb1_and_decaying_epsilon_find_the_better_branch(
    gateway: Gateway, played: dict[str, list[tuple[float, int]]], name: str
) -> None:
    share = sum(branch == 1 for _, branch in played[name][300:]) / 200
    assert share >= 0.85, f"{name} sent {share:.0%} of requests 301-500 to the better branch"
    assert sum(tries(gateway, name)) == 500  # two workers: no feedback lost or counted twice


def test_linucb_picks_the_better_branch_for_each_feature(
    gateway: Gateway, played: dict[str, list[tuple[float, int]]]
) -> None:
    right = sum(branch == (1 if f > 0.5 else 0) for f, branch in played["mab-linucb"][1000:]) / 200
    assert right >= 0.85, f"LINUCB picked the better branch for {right:.0%} of requests 1001-1200"
    assert sum(tries(gateway, "mab-linucb")) == 1200


@pytest.mark.parametrize("name", ["mab-ucb1-tuned", "mab-ts"])
def test_concurrent_feedback_is_counted_once_each(
    gateway: Gateway, played: dict[str, list[tuple[float, int]]], name: str
) -> None:
    assert sum(len(played[f"{name}#{i}"]) for i in range(4)) == 200
    assert sum(tries(gateway, name)) == 200
