"""The routers of issue 15 (UCB1, UCB1_TUNED, decaying EPSILON_GREEDY, Gaussian THOMPSON_SAMPLING,
LINUCB): their maths on known counts, the shared state every bandit keeps, their parameters,
and how manifests and `seldon generate mab --router` name them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from seldon_serving.components.builtin import BuiltinInputError, BuiltinParameterError, EpsilonGreedy
from seldon_serving.components.builtin.epsilon_greedy import DecayingEpsilonGreedy
from seldon_serving.components.builtin.linucb import LinUCB
from seldon_serving.components.builtin.registry import (
    BANDIT_ROUTERS,
    builtin_for_image,
    builtin_for_implementation,
)
from seldon_serving.components.builtin.thompson import ThompsonSampling
from seldon_serving.components.builtin.ucb import UCB1, UCB1Tuned
from seldon_serving.engine.plan import check_deployment
from seldon_serving.spec import ManifestError, generate, parse_deployment
from seldon_serving.spec.prototypes import MAB_ROUTERS
from seldon_serving.state.base import StateHandle
from seldon_serving.state.sqlite import SqliteStore

ONE_ROW = np.array([[1.0, 2.0]])
NEW_ROUTERS: dict[str, dict[str, Any]] = {  # implementation -> constructor keywords
    "UCB1": {},
    "UCB1_TUNED": {},
    "EPSILON_GREEDY": {},
    "THOMPSON_SAMPLING": {"reward_model": "gaussian"},
    "LINUCB": {},
}


def router(implementation: str, **params: Any) -> Any:
    builtin = builtin_for_implementation(implementation)
    assert builtin is not None, implementation
    return builtin.cls(**{**NEW_ROUTERS[implementation], **params})


def counts(handle: StateHandle, r: Any, tries: list[int], sums: list[float], squares: list[float]) -> None:
    """Store known counts as the router's shared state (what other workers' feedback left)."""
    state = {**r.initial_state(), "tries": tries, "successes": sums}
    if "squares" in state:
        state["squares"] = squares
    handle.put(state)


def test_ucb1_takes_the_largest_mean_plus_bonus(handle: StateHandle) -> None:
    r = UCB1(n_branches=3, seed=0, state=handle)
    tries, sums = [10, 100, 50], [5.0, 60.0, 28.0]
    counts(handle, r, tries, sums, [])
    t = sum(tries)
    expected = [s / n + math.sqrt(2 * math.log(t) / n) for s, n in zip(sums, tries, strict=True)]
    # the least tried branch wins on its bonus although its mean (0.5) is the lowest
    assert int(np.argmax(expected)) == 0
    assert r.indexes(r.current_state()) == pytest.approx(expected)
    assert {r.route(ONE_ROW, []) for _ in range(20)} == {0}
    assert r.state_summary()["best_branch"] == 1  # the best mean, shown to users


def test_ucb1_routes_to_untried_branches_first(handle: StateHandle) -> None:
    r = UCB1(n_branches=3, seed=0, state=handle)
    counts(handle, r, [5, 0, 0], [5.0, 0.0, 0.0], [])
    assert {r.route(ONE_ROW, []) for _ in range(50)} == {1, 2}  # at random between the two


def test_ucb1_tuned_uses_the_observed_variance(handle: StateHandle) -> None:
    r = UCB1Tuned(n_branches=2, seed=0, state=handle)
    tries, sums, squares = [40, 60], [20.0, 33.0], [20.0, 33.0]  # 0/1 rewards: squares == sums
    counts(handle, r, tries, sums, squares)
    log_t = math.log(100)
    expected = []
    for n, s, q in zip(tries, sums, squares, strict=True):
        v = q / n - (s / n) ** 2 + math.sqrt(2 * log_t / n)
        expected.append(s / n + math.sqrt(log_t / n * min(0.25, v)))
    assert r.indexes(r.current_state()) == pytest.approx(expected)
    assert r.route(ONE_ROW, []) == int(np.argmax(expected))
    # feedback keeps the sum of squares: a reward of 0.5 adds 0.25
    r.send_feedback(ONE_ROW, [], 0.5, None, routing=0)
    assert handle.get()["squares"][0] == pytest.approx(20.25)


def test_decaying_epsilon_follows_its_schedule(handle: StateHandle) -> None:
    r = DecayingEpsilonGreedy(n_branches=2, epsilon=1.0, decay=0.1, seed=0, state=handle)
    assert r.exploration_rate(r.current_state()) == 1.0  # t = 1: min(1, 20)
    counts(handle, r, [150, 249], [100.0, 200.0], [])
    handle.update(lambda s: {**s, "best": 1})
    assert r.exploration_rate(r.current_state()) == pytest.approx(1.0 * 2 / (0.1 * 400))
    # explores uniformly over both branches: the worse one gets eps_t / 2 of the requests
    share = sum(r.route(ONE_ROW, []) == 0 for _ in range(4000)) / 4000
    assert share == pytest.approx(0.025, abs=0.012)
    constant = DecayingEpsilonGreedy(n_branches=2, epsilon=0.3, decay=0, state=handle)
    assert constant.exploration_rate(constant.current_state()) == 0.3


def test_seed_image_keeps_seldons_constant_epsilon() -> None:
    image = builtin_for_image("seldonio/mab_epsilon_greedy:1.1")
    assert image is not None and image.cls is EpsilonGreedy
    by_name = builtin_for_implementation("EPSILON_GREEDY")
    assert by_name is not None and by_name.cls is DecayingEpsilonGreedy
    seed = EpsilonGreedy(n_branches=2, epsilon=0.2, seed=0)
    for _ in range(400):  # however much it learns, it explores 20% of the time
        seed.send_feedback(ONE_ROW, [], 1.0, None, routing=1)
    assert sum(seed.route(ONE_ROW, []) == 0 for _ in range(2000)) / 2000 == pytest.approx(0.2, abs=0.03)


def test_gaussian_thompson_learns_continuous_rewards() -> None:
    r = ThompsonSampling(n_branches=2, seed=3, reward_model="gaussian")
    rng = np.random.default_rng(0)
    for _ in range(300):
        branch = r.route(ONE_ROW, [])
        r.send_feedback(
            ONE_ROW, [], float(rng.normal(10.0 if branch == 1 else 9.0, 2.0)), None, routing=branch
        )
    assert sum(r.route(ONE_ROW, []) == 1 for _ in range(200)) >= 170
    assert r.state_summary()["branches"][1]["value"] == pytest.approx(10.0, abs=0.5)
    with pytest.raises(BuiltinInputError, match=r"\[0, 1\]"):
        ThompsonSampling(n_branches=2).send_feedback(ONE_ROW, [], 10.0, None, routing=0)  # beta: fractions


def test_linucb_updates_a_and_b_and_scores_by_them(handle: StateHandle) -> None:
    r = LinUCB(n_branches=2, alpha=0.5, seed=0, state=handle)
    request = np.array([[2.0, 3.0], [7.0, 7.0]])  # only the first row is the context
    r.send_feedback(request, [], 0.5, None, routing=1, puid="p1")
    state = handle.get()
    x = np.array([2.0, 3.0, 1.0])  # the intercept appended
    assert state["dim"] == 3
    assert np.allclose(state["A"][0], np.eye(3)) and np.allclose(state["b"][0], 0.0)
    assert np.allclose(state["A"][1], np.eye(3) + np.outer(x, x))
    assert np.allclose(state["b"][1], 0.5 * x)
    query = np.array([1.0, -1.0, 1.0])
    expected = []
    for a, b in zip(state["A"], state["b"], strict=True):
        inverse = np.linalg.inv(np.array(a))
        expected.append(inverse @ np.array(b) @ query + 0.5 * math.sqrt(query @ inverse @ query))
    assert r.scores(query) == pytest.approx(expected)


def test_linucb_context_from_named_features_and_its_refusals() -> None:
    r = LinUCB(n_branches=2, features="b:c", intercept=False)
    assert list(r.context(np.array([[1.0, 2.0, 3.0]]), ["a", "b", "c"])) == [2.0, 3.0]
    with pytest.raises(BuiltinInputError, match="features names 'c'"):
        r.context(np.array([[1.0, 2.0]]), ["a", "b"])
    full = LinUCB(n_branches=2)
    with pytest.raises(BuiltinInputError, match="needs the request"):
        full.send_feedback(None, [], 1.0, None, routing=0)
    full.send_feedback(ONE_ROW, [], 1.0, None, routing=0)
    with pytest.raises(BuiltinInputError, match=r"has 4 values .* learned on 3"):
        full.route(np.array([[1.0, 2.0, 3.0]]), [])


def test_linucb_learns_an_arm_per_context() -> None:
    r = LinUCB(n_branches=2, seed=1)
    rng = np.random.default_rng(1)
    for _ in range(600):
        f = rng.random()
        branch = r.route(np.array([[f]]), [])
        p = 0.9 - 0.8 * f if branch == 0 else 0.1 + 0.8 * f
        r.send_feedback(np.array([[f]]), [], float(rng.random() < p), None, routing=branch)
    assert r.route(np.array([[0.05]]), []) == 0
    assert r.route(np.array([[0.95]]), []) == 1


@pytest.mark.parametrize("implementation", list(NEW_ROUTERS))
def test_every_router_shares_dedups_and_persists(implementation: str, tmp_path: Any) -> None:
    store = SqliteStore(tmp_path / "state.db")
    try:
        handle = StateHandle(store, "mab", implementation)
        worker_a = router(implementation, n_branches=2, seed=0, state=handle)
        worker_b = router(implementation, n_branches=2, seed=1, state=handle)
        worker_b.route(ONE_ROW, [])  # b holds a cached copy now
        for i in range(30):
            for _ in range(2):  # every feedback delivered twice (an engine retry)
                worker_a.send_feedback(ONE_ROW, [], 1.0, None, routing=1, puid=f"r{i}")
            worker_a.send_feedback(ONE_ROW, [], 0.0, None, routing=0, puid=f"s{i}")
        assert [b["tries"] for b in worker_b.state_summary()["branches"]] == [30, 30]
    finally:
        store.close()
    reopened = SqliteStore(tmp_path / "state.db")  # a restart
    try:
        again = router(
            implementation, n_branches=2, seed=2, state=StateHandle(reopened, "mab", implementation)
        )
        assert [b["tries"] for b in again.state_summary()["branches"]] == [30, 30]
        assert sum(again.route(ONE_ROW, []) == 1 for _ in range(100)) >= 70  # it learned: branch 1 pays
    finally:
        reopened.close()


@pytest.mark.parametrize(
    ("implementation", "params", "match"),
    [
        ("UCB1", {"epsilon": 0.2}, "UCB1 has no parameter epsilon"),
        ("UCB1_TUNED", {"n_branches": "two"}, "n_branches must be an integer"),
        ("EPSILON_GREEDY", {"decay": -1}, "decay must be >= 0.0"),
        ("THOMPSON_SAMPLING", {"reward_model": "poisson"}, "reward_model must be beta or gaussian"),
        ("LINUCB", {"alpha": "x"}, "alpha must be a number"),
    ],
)
def test_bad_parameters_are_one_sentence_naming_them(implementation: str, params: dict, match: str) -> None:
    with pytest.raises(BuiltinParameterError, match=match) as caught:
        router(implementation, **{"n_branches": 2, **params})
    assert caught.value.parameter == next(iter(params))


def _mab(router_name: str) -> dict[str, Any]:
    doc = generate("mab", "m", image_a="a:1", image_b="b:1", router=router_name)
    deployment: dict[str, Any] = doc["items"][-1]
    return deployment


def test_generate_mab_router_names_every_router_and_plans_it() -> None:
    assert list(MAB_ROUTERS) == list(BANDIT_ROUTERS)  # the CLI offers exactly the built-ins
    for name in MAB_ROUTERS:
        doc = _mab(name.lower())
        graph = doc["spec"]["predictors"][0]["graph"]
        assert graph["implementation"] == name
        assert [
            c["image"]
            for s in doc["spec"]["predictors"][0]["componentSpecs"]
            for c in s["spec"]["containers"]
        ] == [
            "a:1",
            "b:1",
        ]  # no router container: it is built in
        (plan,) = check_deployment(parse_deployment(doc))
        assert plan.label.endswith(f"(built-in {name})")
    with pytest.raises(
        ManifestError, match="unknown router 'UCB2'; choose one of UCB1, UCB1_TUNED, EPSILON_GREEDY"
    ):
        _mab("UCB2")


def test_n_branches_must_match_the_children_at_apply() -> None:
    doc = _mab("UCB1")
    doc["spec"]["predictors"][0]["graph"]["parameters"][0]["value"] = "3"
    with pytest.raises(ManifestError, match="UCB1 has n_branches 3 but 2 children") as caught:
        check_deployment(parse_deployment(doc))
    assert caught.value.path == "spec.predictors[0].graph.children"
