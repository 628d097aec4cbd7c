"""The seed's multi-armed bandit learns through the server, with two workers sharing
its state: no feedback lost or counted twice."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_seed_examples import MOCK, Gateway, generate, serve
from tests.helpers import seldon_bin

pytestmark = pytest.mark.slow

ROUTERS = {
    "mab-eg": ("seldonio/mab_epsilon_greedy:1.1", 0.70),
    "mab-ts": ("seldonio/mab_thompson_sampling:0.1", 0.90),
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("mab")
    for name, (image, _) in ROUTERS.items():
        generate(directory, ["mab", "--imageA", MOCK, "--imageB", MOCK], name, "--mab-image", image)
    yield from serve(directory, workers=2)


def router_branches(gateway: Gateway, name: str) -> list[dict[str, Any]]:
    """The router's per-branch state, as `seldon get NAME -o json` shows it."""
    out = subprocess.run(
        [seldon_bin(), "get", name, "-o", "json", "--server", gateway.admin_url],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    found: list[list[dict[str, Any]]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("branches"), list):
                found.append(node["branches"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(out))
    assert found, f"no router state in `seldon get {name} -o json`: {out[:500]}"
    return found[0]


@pytest.mark.parametrize("name", list(ROUTERS))
def test_bandit_learns_the_rewarded_branch(gateway: Gateway, name: str) -> None:
    request = {"data": {"ndarray": [[1.0, 2.0]]}}
    for _ in range(300):
        answer = gateway.predict(name, request)
        branch = answer["meta"]["routing"]["eg-router"]
        gateway.feedback(
            name, {"request": request, "response": answer, "reward": 1.0 if branch == 1 else 0.0}
        )
    chosen = [gateway.predict(name, request)["meta"]["routing"]["eg-router"] for _ in range(200)]
    share = chosen.count(1) / len(chosen)
    assert share >= ROUTERS[name][1], f"{name} sent only {share:.0%} to the rewarded branch"

    branches = router_branches(gateway, name)
    assert sum(b["tries"] for b in branches) == pytest.approx(300)  # two workers, none lost or doubled


def test_redelivered_feedback_counts_once(gateway: Gateway) -> None:
    name = "mab-eg"
    request = {"data": {"ndarray": [[1.0, 2.0]]}}
    before = sum(b["tries"] for b in router_branches(gateway, name))
    answer = gateway.predict(name, request)
    for _ in range(3):  # a client (or proxy) retrying the same feedback
        gateway.feedback(name, {"request": request, "response": answer, "reward": 1.0})
    after = sum(b["tries"] for b in router_branches(gateway, name))
    assert after - before == pytest.approx(1)
