"""A/B statistics (`engine.experiments`): the maths against scipy.stats on the same counts, the
test's calibration and power, and the data plane's counting of branches, errors and feedback."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from scipy import stats

from seldon_serving.engine import experiments as ex
from seldon_serving.engine.plane import DataPlane
from seldon_serving.protocol.errors import SeldonError
from seldon_serving.protocol.message import NDARRAY, Feedback, SeldonMessage
from tests.engine.build import build, manifest, node, predictor

X = SeldonMessage(form=NDARRAY, payload=[[1.0, 2.0]])


def stored(rewards: dict[str, list[float]], requests: dict[str, int] | None = None) -> dict[str, Any]:
    """A stored value as the data plane publishes it, for a router whose branches got `rewards`."""
    counts = {}
    for name, values in rewards.items():
        array = np.asarray(values, dtype=float)
        counts[name] = {
            "requests": (requests or {}).get(name, len(values)),
            "errors": 0,
            "latency": {"60": len(values)},  # 1 ms
            "feedback": len(values),
            "reward_sum": float(array.sum()),
            "reward_sq": float((array * array).sum()),
            "non_binary": int(((array != 0) & (array != 1)).sum()),
        }
    experiment = {
        "kind": "router",
        "predictor": "main",
        "node": "ab",
        "branches": list(rewards),
        "counts": counts,
        "unattributed": 0,
    }
    return {
        "epoch": [1.0, 1],
        "alpha": 0.05,
        "power": 0.8,
        "min_effect": None,
        "experiments": {"x": experiment},
    }


def summary(rewards: dict[str, list[float]]) -> dict[str, Any]:
    [entry] = ex.summarize(stored(rewards))
    return entry


def test_intervals_and_tests_equal_scipy_on_the_same_counts() -> None:
    rng = np.random.default_rng(7)
    # 0/1 rewards: Wilson's interval, and the pooled z-test (= chi-square of the 2x2 table)
    a, b = (rng.random(900) < 0.52).astype(float), (rng.random(1100) < 0.58).astype(float)
    entry = summary({"classifier-1": list(a), "classifier-2": list(b)})
    assert entry["test"] == "two-proportion z-test"
    for branch, rewards in zip(entry["branches"], (a, b), strict=True):
        ci = stats.binomtest(int(rewards.sum()), len(rewards)).proportion_ci(0.95, method="wilson")
        assert branch["reward_ci95"] == pytest.approx([ci.low, ci.high], rel=1e-12)
        assert branch["reward_mean"] == pytest.approx(rewards.mean(), rel=1e-12)
    [comparison] = entry["comparisons"]
    table = [[b.sum(), len(b) - b.sum()], [a.sum(), len(a) - a.sum()]]
    expected_p = stats.chi2_contingency(table, correction=False)[1]
    assert comparison["leader"] == "classifier-2" and comparison["branch"] == "classifier-1"
    assert comparison["p_value"] == pytest.approx(expected_p, rel=1e-9)
    assert comparison["effect"] == pytest.approx(b.mean() - a.mean(), rel=1e-12)

    # continuous rewards: t intervals, and Welch's t-test
    c, d = rng.normal(0.3, 1.0, 40), rng.normal(0.9, 2.5, 25)
    entry = summary({"m1": list(c), "m2": list(d)})
    assert entry["test"] == "Welch's t-test"
    for branch, rewards in zip(entry["branches"], (c, d), strict=True):
        low, high = stats.t.interval(0.95, len(rewards) - 1, loc=rewards.mean(), scale=stats.sem(rewards))
        assert branch["reward_ci95"] == pytest.approx([low, high], rel=1e-9)
    [comparison] = entry["comparisons"]
    welch = stats.ttest_ind(d, c, equal_var=False)
    assert comparison["statistic"] == pytest.approx(welch.statistic, rel=1e-9)
    assert comparison["p_value"] == pytest.approx(welch.pvalue, rel=1e-9)
    assert comparison["df"] == pytest.approx(welch.df, rel=1e-9)


def test_rates_060_vs_050_with_2000_per_branch_are_told_apart() -> None:
    rng = np.random.default_rng(2026)
    entry = summary({"a": list(rng.random(2000) < 0.50), "b": list(rng.random(2000) < 0.60)})
    [comparison] = entry["comparisons"]
    assert comparison["p_value"] < 0.01
    assert entry["winner"] == "b"
    assert comparison["remaining_feedback"] == 0  # 2,000 per branch is past the ~390 needed


def test_the_test_is_calibrated_and_the_sample_size_gives_the_power() -> None:
    rng = np.random.default_rng(15)

    def rejections(p_a: float, p_b: float, n: int) -> float:
        rejected = 0
        for _ in range(200):
            a, b = rng.binomial(1, p_a, n).astype(float), rng.binomial(1, p_b, n).astype(float)
            [comparison] = summary({"a": list(a), "b": list(b)})["comparisons"]
            rejected += comparison["significant"]
        return rejected / 200

    assert 0.025 <= rejections(0.5, 0.5, 2000) <= 0.075  # alpha 0.05: rejects 5% +- 2.5% under H0
    # The sample size formula (0.60 vs 0.50, alpha 0.05, power 0.8): 388 per branch, as the
    # textbook tables say; with that many the test finds the difference ~80% of the time.
    needed = ex.sample_sizes((0.6, 0.5), 0.1, 1.0, 0.05, 0.8, binary=True)
    assert needed is not None and [round(n + 0.5) for n in needed] == [388, 388]
    assert 0.72 <= rejections(0.5, 0.6, 388) <= 0.88


def ab_deployment() -> dict[str, Any]:
    """Two predictors 50/50: `main` is an A/B test whose second branch fails, `canary` one model."""
    router = node(
        "ab",
        "ROUTER",
        implementation="RANDOM_ABTEST",
        params={"ratioA": 0.5},
        children=[node("good", "MODEL"), node("bad", "MODEL")],
    )
    main = predictor("main", router, {"good": "RowSum", "bad": "Boom"}, traffic=50)
    canary = predictor("canary", node("solo", "MODEL"), {"solo": "RowSum"}, traffic=50)
    return manifest("shop", predictors=[main, canary])


def test_the_data_plane_counts_branches_errors_and_feedback_across_workers() -> None:
    async def serve(plane: DataPlane, rounds: int) -> dict[str, int]:
        seen = {"good": 0, "bad": 0, "solo": 0, "rewarded_good": 0, "rewarded_solo": 0}
        for i in range(rounds):
            try:
                answer = await plane.predict("shop", None, X)
            except SeldonError as error:
                assert error.node == "bad"
                seen["bad"] += 1
                continue
            branch = "solo" if "solo" in answer.meta["requestPath"] else "good"
            seen[branch] += 1
            reward = float(i % 2)
            await plane.send_feedback("shop", None, Feedback(request=X, response=answer, reward=reward))
            seen[f"rewarded_{branch}"] += int(reward)
        return seen

    doc = ab_deployment()
    value: Any = None
    totals = {"good": 0, "bad": 0, "solo": 0, "rewarded_good": 0, "rewarded_solo": 0}
    for _ in range(2):  # two workers, each publishing what it counted into one stored value
        plane = DataPlane()
        plane.install(build(doc), (10.0, 3))
        seen = asyncio.run(serve(plane, 60))
        for key, delta in plane.experiments.take():
            assert key == "default/shop"
            value = ex.merge(value, delta)
        assert plane.experiments.take() == []  # nothing new since
        totals = {k: totals[k] + seen[k] for k in totals}
    traffic, router = ex.summarize(value)

    assert traffic["kind"] == "traffic" and [b["branch"] for b in traffic["branches"]] == ["main", "canary"]
    main, canary = traffic["branches"]
    assert main["requests"] == totals["good"] + totals["bad"] and main["errors"] == totals["bad"]
    assert canary["requests"] == totals["solo"] and canary["errors"] == 0
    assert canary["feedback"] == totals["solo"]
    assert canary["reward_mean"] == pytest.approx(totals["rewarded_solo"] / totals["solo"])
    assert traffic["unattributed_feedback"] == 0

    assert (router["predictor"], router["node"]) == ("main", "ab")
    good, bad = router["branches"]
    assert (good["branch"], good["requests"], good["errors"]) == ("good", totals["good"], 0)
    assert (bad["branch"], bad["requests"], bad["errors"]) == ("bad", totals["bad"], totals["bad"])
    assert bad["error_rate"] == 1.0 and good["feedback"] == totals["good"]
    assert 0 < good["latency_p50_ms"] <= good["latency_p99_ms"] < 1000

    # A new generation starts from zero; counts of the old one arriving late are dropped.
    plane = DataPlane()
    plane.install(build(doc), (10.0, 4))
    asyncio.run(serve(plane, 5))
    [(_, newer)] = plane.experiments.take()
    value = ex.merge(value, newer)
    assert sum(b["requests"] for b in ex.summarize(value)[0]["branches"]) == 5
    stale = ex.merge(None, {**newer, "epoch": [10.0, 3]})
    assert ex.merge(value, stale) == value


def test_bad_experiment_annotations_are_refused_naming_them() -> None:
    with pytest.raises(ex.ExperimentConfigError, match=r"seldon\.io/experiment-power .* got '80'"):
        ex.config_from({"seldon.io/experiment-power": "80"})
    assert ex.config_from(None, {"seldon.io/experiment-alpha": "0.01"}).alpha == 0.01
