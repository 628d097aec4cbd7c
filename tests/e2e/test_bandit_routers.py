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


@pytest.mark.parametrize("name", ["mab-ucb1", "mab-eg"])
def test_ucb1_and_decaying_epsilon_find_the_better_branch(gateway: Gateway, name: str) -> None:
    # Bernoulli rewards 0.9 (branch 1) vs 0.5, pre-drawn per round and branch (a fixed environment)
    rng = random.Random(7)
    table = [(float(rng.random() < 0.5), float(rng.random() < 0.9)) for _ in range(500)]
    seen = play(gateway, name, 500, lambda t, f, branch: table[t][branch], lambda t: 0.0)
    share = sum(branch == 1 for _, branch in seen[300:]) / 200
    assert share >= 0.85, f"{name} sent {share:.0%} of requests 301-500 to the better branch"
    assert sum(tries(gateway, name)) == 500  # two workers: no feedback lost or counted twice


def test_linucb_picks_the_better_branch_for_each_feature(gateway: Gateway) -> None:
    # Branch 0 pays with probability 0.9 - 0.8 f, branch 1 with 0.1 + 0.8 f: branch 0 is the
    # better one for f < 0.5, branch 1 above, and both are worth 0.5 on average.
    features = np.random.default_rng(11).random(1200)
    draws = np.random.default_rng(12).random(1200)

    def reward(t: int, f: float, branch: int) -> float:
        p = 0.9 - 0.8 * f if branch == 0 else 0.1 + 0.8 * f
        return float(draws[t] < p)

    seen = play(gateway, "mab-linucb", 1200, reward, lambda t: float(features[t]))
    right = sum(branch == (1 if f > 0.5 else 0) for f, branch in seen[1000:]) / 200
    assert right >= 0.85, f"LINUCB picked the better branch for {right:.0%} of requests 1001-1200"
    assert sum(tries(gateway, "mab-linucb")) == 1200


@pytest.mark.parametrize("name", ["mab-ucb1-tuned", "mab-ts"])
def test_concurrent_feedback_is_counted_once_each(gateway: Gateway, name: str) -> None:
    # Four clients at once, so both workers update the shared counts at the same time.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(
                lambda _: play(gateway, name, 50, lambda t, f, branch: float(branch == 1), lambda t: 0.0),
                range(4),
            )
        )
    assert sum(len(r) for r in results) == 200
    assert sum(tries(gateway, name)) == 200
