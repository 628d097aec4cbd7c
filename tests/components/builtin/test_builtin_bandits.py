"""The epsilon-greedy and Thompson-sampling routers: learning, counting, sharing, refusing."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from seldon_serving.components.builtin import (
    BuiltinInputError,
    BuiltinParameterError,
    EpsilonGreedy,
    ThompsonSampling,
)
from seldon_serving.state.base import StateHandle
from seldon_serving.state.memory import MemoryStore

ROUTERS = [EpsilonGreedy, ThompsonSampling]
ONE_ROW = np.array([[1.0, 2.0]])


def make(cls: type, **params: object) -> EpsilonGreedy | ThompsonSampling:
    return cls(**params)


def train(router: EpsilonGreedy | ThompsonSampling, rounds: int, winner: int = 1) -> None:
    """Route and reward: the `winner` branch always succeeds, the others never do."""
    for _ in range(rounds):
        branch = router.route(ONE_ROW, [])
        router.send_feedback(ONE_ROW, [], 1.0 if branch == winner else 0.0, None, routing=branch)


def share_of(router: EpsilonGreedy | ThompsonSampling, branch: int, routes: int) -> float:
    return sum(router.route(ONE_ROW, []) == branch for _ in range(routes)) / routes


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_epsilon_greedy_learns_the_rewarded_branch(seed: int) -> None:
    router = EpsilonGreedy(n_branches=2, epsilon=0.2, seed=seed)
    train(router, 300)
    assert share_of(router, 1, 200) >= 0.70
    assert router.state_summary()["best_branch"] == 1


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_thompson_learns_the_rewarded_branch(seed: int) -> None:
    router = ThompsonSampling(n_branches=2, seed=seed)
    train(router, 300)
    assert share_of(router, 1, 200) >= 0.90
    assert router.state_summary()["best_branch"] == 1


@pytest.mark.parametrize("cls", ROUTERS)
def test_seeded_runs_are_reproducible(cls: type) -> None:
    def run(seed: int) -> tuple[list[int], dict[str, object]]:
        router = make(cls, n_branches=3, seed=seed, history=True)
        train(router, 150, winner=2)
        return router.branch_history, router.state_summary()

    assert run(42) == run(42)
    assert run(42)[0] != run(43)[0]


@pytest.mark.parametrize("cls", ROUTERS)
def test_route_returns_a_plain_int_in_range(cls: type) -> None:
    router = make(cls, n_branches=4, seed=1)
    for _ in range(50):
        branch = router.route(ONE_ROW, [])
        assert type(branch) is int and 0 <= branch < 4


@pytest.mark.parametrize("cls", ROUTERS)
@pytest.mark.parametrize("reward", [1.5, -0.1, float("nan"), "lots", None])
def test_reward_outside_unit_interval_refused(cls: type, reward: object) -> None:
    router = make(cls, n_branches=2, seed=0)
    with pytest.raises(ValueError, match="reward"):
        router.send_feedback(ONE_ROW, [], reward, None, routing=0)
    assert sum(b["tries"] for b in router.state_summary()["branches"]) == 0


@pytest.mark.parametrize("cls", ROUTERS)
def test_feedback_without_routing_refused_clearly(cls: type) -> None:
    router = make(cls, n_branches=2, seed=0)
    with pytest.raises(BuiltinInputError, match="feedback carries no routing for this router"):
        router.send_feedback(ONE_ROW, [], 1.0, None)
    with pytest.raises(BuiltinInputError, match="not a branch"):
        router.send_feedback(ONE_ROW, [], 1.0, None, routing=2)


@pytest.mark.parametrize("cls", ROUTERS)
def test_rewards_count_per_row_and_fractions_are_kept(cls: type) -> None:
    router = make(cls, n_branches=2, seed=0)
    router.send_feedback(np.ones((3, 2)), [], 0.5, None, routing=1)  # 1.5 successes in 3 tries
    router.send_feedback(ONE_ROW, [], 0.7, None, routing=0)  # Seldon's int(0.7) would count 0
    router.send_feedback(np.array([]), [], 1.0, None, routing=0)  # no request data: one trial
    router.send_feedback("some strData", [], "1", None, routing=0)  # reward sent as a string
    branches = router.state_summary()["branches"]
    assert (branches[0]["tries"], branches[0]["successes"]) == (3, pytest.approx(2.7))
    assert (branches[1]["tries"], branches[1]["successes"]) == (3, pytest.approx(1.5))
    assert branches[1]["value"] == pytest.approx(0.5)


@pytest.mark.parametrize("cls", ROUTERS)
def test_duplicate_feedback_of_one_request_counted_once(cls: type) -> None:
    router = make(cls, n_branches=2, seed=0)
    for _ in range(3):
        router.send_feedback(ONE_ROW, [], 1.0, None, routing=1, puid="request-1")
    router.send_feedback(ONE_ROW, [], 1.0, None, routing=1, puid="request-2")
    assert router.state_summary()["branches"][1]["tries"] == 2


@pytest.mark.parametrize("cls", ROUTERS)
def test_state_survives_a_restart(cls: type, handle: StateHandle) -> None:
    first = make(cls, n_branches=2, seed=0, state=handle)
    train(first, 50)
    restarted = make(cls, n_branches=2, seed=99, state=handle)
    assert restarted.state_summary() == first.state_summary()
    assert share_of(restarted, 1, 100) >= 0.7


@pytest.mark.parametrize("cls", ROUTERS)
def test_workers_sharing_a_store_see_each_others_feedback(cls: type, handle: StateHandle) -> None:
    worker_a = make(cls, n_branches=2, seed=0, state=handle)
    worker_b = make(cls, n_branches=2, seed=1, state=handle)
    worker_b.route(ONE_ROW, [])  # b has a cached copy now
    for _ in range(40):
        worker_a.send_feedback(ONE_ROW, [], 1.0, None, routing=1)
        worker_a.send_feedback(ONE_ROW, [], 0.0, None, routing=0)
    assert worker_b.state_summary()["branches"][1]["tries"] == 40
    assert share_of(worker_b, 1, 100) >= 0.7


@pytest.mark.parametrize("cls", ROUTERS)
def test_state_of_a_different_branch_count_is_not_reused(cls: type, handle: StateHandle) -> None:
    train(make(cls, n_branches=2, seed=0, state=handle), 20)
    bigger = make(cls, n_branches=3, seed=0, state=handle)
    assert [b["tries"] for b in bigger.state_summary()["branches"]] == [0, 0, 0]
    bigger.send_feedback(ONE_ROW, [], 1.0, None, routing=2)
    assert bigger.state_summary()["branches"][2]["tries"] == 1


@pytest.mark.parametrize("cls", ROUTERS)
def test_branch_count_is_required_and_positive(cls: type) -> None:
    with pytest.raises(BuiltinParameterError, match="n_branches"):
        make(cls)
    with pytest.raises(BuiltinParameterError, match="n_branches"):
        make(cls, n_branches=0)


def test_epsilon_greedy_explores_only_the_other_branches() -> None:
    router = EpsilonGreedy(n_branches=3, epsilon=1.0, best_branch=0, seed=5)
    counts = Counter(router.route(ONE_ROW, []) for _ in range(600))
    assert counts[0] == 0
    assert 240 < counts[1] < 360 and 240 < counts[2] < 360


def test_epsilon_greedy_best_branch_zero_is_honoured() -> None:
    # Seldon ignored best_branch=0 (falsy) and picked a random start.
    for seed in range(5):
        router = EpsilonGreedy(n_branches=4, epsilon=0.0, best_branch=0, seed=seed)
        assert {router.route(ONE_ROW, []) for _ in range(20)} == {0}


def test_epsilon_greedy_single_branch_always_routes_to_it() -> None:
    router = EpsilonGreedy(n_branches=1, epsilon=1.0, seed=0)  # Seldon 1.1 crashed here
    assert {router.route(ONE_ROW, []) for _ in range(20)} == {0}


def test_epsilon_greedy_best_is_highest_success_rate() -> None:
    router = EpsilonGreedy(n_branches=3, epsilon=0.1, best_branch=0, seed=0)
    router.send_feedback(np.ones((4, 1)), [], 0.5, None, routing=0)
    router.send_feedback(np.ones((4, 1)), [], 0.75, None, routing=2)
    summary = router.state_summary()
    assert summary["best_branch"] == 2
    assert [b["value"] for b in summary["branches"]] == [0.5, 0.0, 0.75]


def test_epsilon_greedy_ties_are_broken_at_random() -> None:
    bests = set()
    for seed in range(20):
        router = EpsilonGreedy(n_branches=3, best_branch=0, seed=seed)
        router.send_feedback(ONE_ROW, [], 0.0, None, routing=0)  # all values 0: a three-way tie
        bests.add(router.state_summary()["best_branch"])
    assert bests == {0, 1, 2}


def test_epsilon_greedy_bad_parameters_refused() -> None:
    with pytest.raises(BuiltinParameterError, match="epsilon"):
        EpsilonGreedy(n_branches=2, epsilon=1.5)
    with pytest.raises(BuiltinParameterError, match="best_branch"):
        EpsilonGreedy(n_branches=2, best_branch=2)


def test_history_and_branch_names() -> None:
    router = EpsilonGreedy(n_branches=2, seed=0, history=True, branch_names="a:b")
    chosen = [router.route(ONE_ROW, []) for _ in range(5)]
    assert router.branch_history == chosen
    assert len(router.value_history) == 5
    assert [b["name"] for b in router.state_summary()["branches"]] == ["a", "b"]


def test_thompson_summary_reports_posterior_means() -> None:
    router = ThompsonSampling(n_branches=2, seed=0)
    router.send_feedback(np.ones((8, 1)), [], 0.75, None, routing=0)  # 6 of 8
    branch = router.state_summary()["branches"][0]
    assert branch["failures"] == pytest.approx(2.0)
    assert branch["posterior_mean"] == pytest.approx(7 / 10)


def test_standalone_routers_do_not_share_state() -> None:
    first, second = EpsilonGreedy(n_branches=2, seed=0), EpsilonGreedy(n_branches=2, seed=0)
    first.send_feedback(ONE_ROW, [], 1.0, None, routing=1)
    assert second.state_summary()["branches"][1]["tries"] == 0


def test_memory_store_key_holds_plain_json(store: MemoryStore) -> None:
    handle = StateHandle(store, "ns", "router")
    router = EpsilonGreedy(n_branches=2, seed=0, state=handle)
    router.send_feedback(ONE_ROW, [], 1.0, None, routing=1)
    stored = store.get("ns", "router")
    assert stored["tries"] == [0, 1] and stored["successes"] == [0.0, 1.0] and stored["best"] == 1
