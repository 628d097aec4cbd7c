"""Decision quality of the bandit routers: cumulative regret on simulated Bernoulli arms.

Each round a router picks an arm, the arm pays 1 with its success probability, and the
router gets that reward as feedback (exactly what `seldon serve` does with a client's
feedback).  Regret of a round = p_best - p_chosen (the expected loss against always
picking the best arm, whose regret is 0), summed over the rounds.  Every policy sees
the same pre-drawn rewards for a given seed (common random numbers), so differences
between policies are not noise from the environment.

The routers are the real classes with their default in-memory state, i.e. every
feedback goes through the same StateHandle update path as in production.

Run:  .venv/bin/python bench/decision_quality.py [--rounds 10000] [--seeds 20]
Writes bench/DECISION_QUALITY.md and bench/decision_quality.png.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seldon_serving.components.builtin import EpsilonGreedy, ThompsonSampling

HERE = Path(__file__).resolve().parent
SCENARIOS: dict[str, list[float]] = {
    "2 arms (0.05 / 0.07)": [0.05, 0.07],
    "3 arms (0.05 / 0.07 / 0.09)": [0.05, 0.07, 0.09],
}
EPSILON = 0.1  # the router's default, and the Kubeflow prototype's
ONE_ROW = np.zeros((1, 1))

# A policy: (n_arms, seed) -> (choose() -> arm, learn(arm, reward) -> None).
Policy = Callable[[int, int], tuple[Callable[[], int], Callable[[int, float], None]]]


def router_policy(cls: type) -> Policy:
    def make(n_arms: int, seed: int) -> tuple[Callable[[], int], Callable[[int, float], None]]:
        router = (
            cls(n_branches=n_arms, seed=seed)
            if cls is ThompsonSampling
            else cls(n_branches=n_arms, seed=seed, epsilon=EPSILON)
        )

        def choose() -> int:
            return router.route(ONE_ROW, [])

        def learn(arm: int, reward: float) -> None:
            router.send_feedback(ONE_ROW, [], reward, None, routing=arm)

        return choose, learn

    return make


def uniform_policy(n_arms: int, seed: int) -> tuple[Callable[[], int], Callable[[int, float], None]]:
    rng = np.random.default_rng(seed)
    return (lambda: int(rng.integers(n_arms))), (lambda arm, reward: None)


def best_arm_policy(probabilities: list[float]) -> Policy:
    best = int(np.argmax(probabilities))
    return lambda n_arms, seed: ((lambda: best), (lambda arm, reward: None))


@dataclass
class Result:
    curves: np.ndarray  # seeds x rounds cumulative regret
    best_share: np.ndarray  # per seed: fraction of rounds on the best arm
    seconds: float

    @property
    def final(self) -> np.ndarray:
        return self.curves[:, -1]


def simulate(policy: Policy, probabilities: list[float], rounds: int, seeds: int) -> Result:
    p = np.asarray(probabilities)
    best = int(np.argmax(p))
    curves = np.empty((seeds, rounds))
    shares = np.empty(seeds)
    started = time.perf_counter()
    for seed in range(seeds):
        # The environment: reward of every arm in every round, drawn once per seed.
        payoffs = np.random.default_rng(10_000 + seed).random((rounds, p.size)) < p
        choose, learn = policy(p.size, seed)
        arms = np.empty(rounds, dtype=np.int64)
        for t in range(rounds):
            arm = choose()
            arms[t] = arm
            learn(arm, 1.0 if payoffs[t, arm] else 0.0)
        curves[seed] = np.cumsum(p[best] - p[arms])
        shares[seed] = np.mean(arms == best)
    return Result(curves, shares, time.perf_counter() - started)


def run(rounds: int, seeds: int) -> dict[str, dict[str, Result]]:
    results: dict[str, dict[str, Result]] = {}
    for scenario, probabilities in SCENARIOS.items():
        policies: dict[str, Policy] = {
            f"epsilon-greedy (epsilon={EPSILON})": router_policy(EpsilonGreedy),
            "Thompson sampling": router_policy(ThompsonSampling),
            "uniform random (reference)": uniform_policy,
            "always the best arm": best_arm_policy(probabilities),
        }
        results[scenario] = {}
        for name, policy in policies.items():
            results[scenario][name] = result = simulate(policy, probabilities, rounds, seeds)
            print(
                f"{scenario:30s} {name:32s} regret {result.final.mean():7.1f} +- {result.final.std():5.1f}"
                f"  best arm {100 * result.best_share.mean():5.1f}%  ({result.seconds:.1f} s)"
            )
    return results


def write_markdown(results: dict[str, dict[str, Result]], rounds: int, seeds: int, path: Path) -> None:
    lines = [
        "# Decision quality of the bandit routers",
        "",
        f"Cumulative (pseudo-)regret after {rounds:,} simulated rounds of route + feedback, Bernoulli",
        f"arms, mean +- standard deviation over {seeds} seeds (each policy sees the same pre-drawn",
        "rewards per seed).  Regret of a round = p(best arm) - p(chosen arm); always picking the best",
        "arm scores 0.  The routers are the real `EpsilonGreedy` / `ThompsonSampling` classes with",
        "their default in-memory state (every feedback through the StateHandle update path).",
        "Produced by `bench/decision_quality.py`; plot: `decision_quality.png`.",
        "",
        "| arms | policy | final cumulative regret | % pulls of the best arm | wall time per round |",
        "|---|---|---:|---:|---:|",
    ]
    for scenario, by_policy in results.items():
        for name, result in by_policy.items():
            per_round_us = 1e6 * result.seconds / (rounds * seeds)
            lines.append(
                f"| {scenario} | {name} | {result.final.mean():.1f} +- {result.final.std():.1f} "
                f"| {100 * result.best_share.mean():.1f}% | {per_round_us:.1f} us |"
            )
    lines += [
        "",
        "Reading it: with gaps of 0.02 in success probability an arm needs thousands of pulls",
        "before its estimate separates from its neighbour's, so over 10,000 rounds both routers",
        "still pay a visible learning cost; the question is how much less than uniform routing",
        "(the A/B-test baseline) they pay.  Epsilon-greedy keeps exploring a fixed share of the",
        "time forever (a floor of about epsilon x the mean gap of the other arms per round, i.e.",
        "a regret line that never flattens); Thompson sampling's exploration fades as the",
        "posteriors separate, so its curve bends over.  The wide spread over seeds comes from",
        "runs that settle on the second-best arm for thousands of rounds before recovering.",
        "Wall time per round is one route + one feedback through the in-memory store plus the",
        "simulation loop, measured on a shared (busy) machine: an upper bound, not a benchmark.",
        "",
    ]
    path.write_text("\n".join(lines))


def write_plot(results: dict[str, dict[str, Result]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: render straight to a file
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.5), squeeze=False)
    for ax, (scenario, by_policy) in zip(axes[0], results.items(), strict=True):
        for name, result in by_policy.items():
            mean, std = result.curves.mean(axis=0), result.curves.std(axis=0)
            x = np.arange(1, mean.size + 1)
            style = "--" if "uniform" in name else "-"
            (line,) = ax.plot(x, mean, style, label=name)
            ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.15)
        ax.set_title(scenario)
        ax.set_xlabel("round")
        ax.set_ylabel("cumulative regret (mean +- 1 std)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--out-dir", type=Path, default=HERE)
    args = parser.parse_args()
    started = time.perf_counter()
    results = run(args.rounds, args.seeds)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_markdown(results, args.rounds, args.seeds, args.out_dir / "DECISION_QUALITY.md")
    write_plot(results, args.out_dir / "decision_quality.png")
    print(f"done in {time.perf_counter() - started:.1f} s -> {args.out_dir}")


if __name__ == "__main__":
    main()
