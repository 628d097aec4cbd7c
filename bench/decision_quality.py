"""Decision quality of the bandit routers: cumulative regret on simulated arms.

Each round a router picks an arm, the arm pays a reward drawn from its distribution, and the
router gets that reward as feedback (exactly what `seldon serve` does with a client's
feedback), either at once or, with delayed feedback, in batches: 100 routes, then their 100
feedbacks (a client that reports rewards periodically).  Regret of a round = mu_best -
mu_chosen (the expected loss against always picking the best arm; in the contextual scenario
the best arm for that round's context), summed over the rounds.  Every policy sees the same
pre-drawn rewards for a given seed (common random numbers), so differences between policies
are not noise from the environment.

The routers are the real classes with their default in-memory state: every route reads the
shared state and every feedback goes through the same `StateHandle.update` path (pure update
function, de-duplication bookkeeping) as in production.  Routers that take only rewards in
[0, 1] (the seed's constant epsilon-greedy and Beta Thompson sampling) get Gaussian rewards
clipped to [0, 1].

Run:  nice .venv/bin/python bench/decision_quality.py [--rounds 10000] [--seeds 20] [--jobs 2]
Writes bench/DECISION_QUALITY.md (keeping the detectors' block between its markers) and
bench/decision_quality*.png.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seldon_serving.components.builtin import EpsilonGreedy, ThompsonSampling
from seldon_serving.components.builtin.epsilon_greedy import DecayingEpsilonGreedy
from seldon_serving.components.builtin.linucb import LinUCB
from seldon_serving.components.builtin.ucb import UCB1, UCB1Tuned

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- detectors:begin -->", "<!-- detectors:end -->"
BATCH = 100  # delayed feedback: this many routes, then their feedbacks
SIGMA = 0.2  # standard deviation of the Gaussian arms


@dataclass(frozen=True)
class Scenario:
    name: str
    family: str  # "bernoulli", "gaussian" or "contextual"
    means: tuple[float, ...]  # arm means (contextual: unused)
    delayed: bool

    @property
    def arms(self) -> int:
        return 2 if self.family == "contextual" else len(self.means)


def scenarios() -> list[Scenario]:
    found = []
    for delayed in (False, True):
        for family in ("bernoulli", "gaussian"):
            found.append(Scenario(f"{family}, 2 arms", family, (0.5, 0.6), delayed))
            found.append(Scenario(f"{family}, 5 arms", family, (0.3, 0.4, 0.45, 0.5, 0.6), delayed))
        found.append(Scenario("contextual, 2 arms", "contextual", (), delayed))
    return found


def contextual_means(f: np.ndarray) -> np.ndarray:
    """Arm means for feature f in [0, 1]: arm 0 is best below 0.5, arm 1 above (both 0.5 on average)."""
    return np.stack([0.9 - 0.8 * f, 0.1 + 0.8 * f], axis=-1)


# A policy factory: (n_arms, seed) -> router-like object with route(X, names) / send_feedback(...).
POLICIES: dict[str, Callable[[int, int], Any]] = {
    "UCB1": lambda k, seed: UCB1(n_branches=k, seed=seed),
    "UCB1_TUNED": lambda k, seed: UCB1Tuned(n_branches=k, seed=seed),
    "EPSILON_GREEDY (decaying, epsilon=1, decay=0.1)": lambda k, seed: DecayingEpsilonGreedy(
        n_branches=k, seed=seed
    ),
    "constant epsilon 0.1 (seed image)": lambda k, seed: EpsilonGreedy(n_branches=k, seed=seed, epsilon=0.1),
    "THOMPSON_SAMPLING (beta)": lambda k, seed: ThompsonSampling(n_branches=k, seed=seed),
    "THOMPSON_SAMPLING (gaussian)": lambda k, seed: ThompsonSampling(
        n_branches=k, seed=seed, reward_model="gaussian"
    ),
    "LINUCB (alpha=1)": lambda k, seed: LinUCB(n_branches=k, seed=seed),
    "uniform random (A/B split)": lambda k, seed: Uniform(k, seed),
}
BOUNDED = {"constant epsilon 0.1 (seed image)", "THOMPSON_SAMPLING (beta)"}


class Uniform:
    """The A/B test's even split: a reference, not a router."""

    def __init__(self, k: int, seed: int) -> None:
        self.k, self.rng = k, np.random.default_rng(seed)

    def route(self, X: Any, names: Any) -> int:
        return int(self.rng.integers(self.k))

    def send_feedback(self, *args: Any, **kwargs: Any) -> None:
        pass


@dataclass
class Result:
    curves: np.ndarray  # seeds x rounds cumulative regret (float32)
    best_share: np.ndarray  # per seed: fraction of rounds on the (per-context) best arm
    seconds: float

    @property
    def final(self) -> np.ndarray:
        return self.curves[:, -1].astype(np.float64)


def simulate(scenario: Scenario, policy: str, rounds: int, seeds: int) -> Result:
    k = scenario.arms
    curves = np.empty((seeds, rounds), dtype=np.float32)
    shares = np.empty(seeds)
    started = time.perf_counter()
    for seed in range(seeds):
        env = np.random.default_rng(10_000 + seed)  # the environment, the same for every policy
        if scenario.family == "contextual":
            features = env.random(rounds)
            means = contextual_means(features)  # rounds x 2
            rewards = (env.random((rounds, k)) < means).astype(np.float64)
            rows = features.reshape(rounds, 1, 1)
        else:
            means = np.broadcast_to(np.asarray(scenario.means), (rounds, k))
            if scenario.family == "bernoulli":
                rewards = (env.random((rounds, k)) < means).astype(np.float64)
            else:
                rewards = env.normal(means, SIGMA)
            rows = np.zeros((rounds, 1, 1))
        if policy in BOUNDED:
            rewards = np.clip(rewards, 0.0, 1.0)
        router = POLICIES[policy](k, seed)
        arms = np.empty(rounds, dtype=np.int64)
        step = BATCH if scenario.delayed else 1
        for start in range(0, rounds, step):
            stop = min(start + step, rounds)
            for t in range(start, stop):
                arms[t] = router.route(rows[t], [])
            for t in range(start, stop):
                router.send_feedback(rows[t], [], float(rewards[t, arms[t]]), None, routing=int(arms[t]))
        index = np.arange(rounds)
        best = means.max(axis=1)
        curves[seed] = np.cumsum(best - means[index, arms])
        shares[seed] = np.mean(means[index, arms] == best)
    return Result(curves, shares, time.perf_counter() - started)


def lai_robbins(scenario: Scenario, t: np.ndarray) -> np.ndarray | None:
    """The asymptotic lower bound on any consistent policy's regret: sum over suboptimal arms
    of gap / KL(arm, best) x ln t (Bernoulli KL; Gaussian with known sigma: 2 sigma^2 / gap)."""
    if scenario.family == "contextual":
        return None
    best = max(scenario.means)
    coefficient = 0.0
    for p in scenario.means:
        gap = best - p
        if gap <= 0:
            continue
        if scenario.family == "bernoulli":
            kl = p * math.log(p / best) + (1 - p) * math.log((1 - p) / (1 - best))
        else:
            kl = gap * gap / (2 * SIGMA * SIGMA)
        coefficient += gap / kl
    return coefficient * np.log(t)


@dataclass
class Fit:
    log_b: float  # regret ~ a + b ln t
    log_r2: float
    lin_c: float  # regret ~ a + c t
    lin_r2: float

    @property
    def shape(self) -> str:
        return "log" if self.log_r2 >= self.lin_r2 else "linear"


def fit(curve: np.ndarray, skip: int = 1000) -> Fit:
    """Least squares of the mean curve against ln t and against t, over 200 rounds spaced evenly
    in ln t from round `skip` to the end.  The first rounds are left out: every policy explores
    then, and the question is how regret grows afterwards.  Even spacing in ln t gives the
    bend of a log curve its weight (evenly spaced rounds would make most curves look straight)."""
    t = np.unique(np.geomspace(skip, curve.size, 200).round().astype(np.int64)).astype(np.float64)
    y = curve[t.astype(np.int64) - 1].astype(np.float64)

    def r2(x: np.ndarray) -> tuple[float, float]:
        design = np.stack([np.ones_like(x), x], axis=1)
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        residual = y - design @ coef
        total = float(np.sum((y - y.mean()) ** 2)) or 1.0
        return float(coef[1]), 1.0 - float(residual @ residual) / total

    log_b, log_r2 = r2(np.log(t))
    lin_c, lin_r2 = r2(t)
    return Fit(log_b, log_r2, lin_c, lin_r2)


def _job(args: tuple[Scenario, str, int, int]) -> tuple[Scenario, str, Result]:
    scenario, policy, rounds, seeds = args
    return scenario, policy, simulate(scenario, policy, rounds, seeds)


def run(rounds: int, seeds: int, jobs: int) -> dict[Scenario, dict[str, Result]]:
    work = [(s, p, rounds, seeds) for s in scenarios() for p in POLICIES]
    results: dict[Scenario, dict[str, Result]] = {s: {} for s in scenarios()}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for scenario, policy, result in pool.map(_job, work):
            results[scenario][policy] = result
            feedback = "delayed" if scenario.delayed else "immediate"
            print(
                f"{scenario.name:20s} {feedback:9s} {policy:46s} regret {result.final.mean():8.1f}"
                f" +- {result.final.std():6.1f}  best {100 * result.best_share.mean():5.1f}%"
                f"  ({result.seconds:.0f} s)",
                flush=True,
            )
    # The pool's order is the submission order; keep the policies in table order.
    return {s: {p: by[p] for p in POLICIES} for s, by in results.items()}


def _key(scenario: Scenario, policy: str) -> str:
    return f"{scenario.name}|{int(scenario.delayed)}|{policy}"


def save(results: dict[Scenario, dict[str, Result]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    for scenario, by_policy in results.items():
        for policy, result in by_policy.items():
            key = _key(scenario, policy)
            arrays[f"curves:{key}"] = result.curves
            arrays[f"shares:{key}"] = result.best_share
            arrays[f"seconds:{key}"] = np.array(result.seconds)
    np.savez_compressed(path, **arrays)


def load(path: Path) -> dict[Scenario, dict[str, Result]]:
    data = np.load(path)
    return {
        s: {
            p: Result(
                data[f"curves:{_key(s, p)}"],
                data[f"shares:{_key(s, p)}"],
                float(data[f"seconds:{_key(s, p)}"]),
            )
            for p in POLICIES
        }
        for s in scenarios()
    }


def write_markdown(results: dict[Scenario, dict[str, Result]], rounds: int, seeds: int, path: Path) -> None:
    kept = f"{BEGIN}\n{END}\n"
    if path.exists():
        text = path.read_text()
        if BEGIN in text and END in text:
            kept = text[text.index(BEGIN) : text.index(END) + len(END)] + "\n"
    lines = [
        "# Decision quality of the bandit routers",
        "",
        f"Cumulative pseudo-regret after {rounds:,} simulated rounds of route + feedback, mean +- standard",
        f"deviation over {seeds} seeds (each policy sees the same pre-drawn rewards per seed).  Regret of",
        "a round = mean reward of the best arm - mean reward of the chosen one (in the contextual",
        "scenario: the best arm for that round's feature); always picking the best arm scores 0.",
        "The routers are the real classes (`UCB1`, `UCB1Tuned`, `DecayingEpsilonGreedy`,",
        "`EpsilonGreedy`, `ThompsonSampling`, `LinUCB`) with their default in-memory state: every",
        "route reads the shared state and every feedback goes through `StateHandle.update`, as in",
        "production.  Produced by `bench/decision_quality.py` (`nice`, 2 processes).",
        "",
        "Scenarios: Bernoulli arms (2 arms 0.5 / 0.6; 5 arms 0.3 / 0.4 / 0.45 / 0.5 / 0.6), Gaussian",
        f"arms with the same means and sigma {SIGMA} (the seed's constant epsilon-greedy and Beta",
        "Thompson sampling take only rewards in [0, 1]: they get them clipped), and a contextual",
        "scenario: one feature f ~ U(0, 1) per request, Bernoulli rewards with means 0.9 - 0.8 f",
        "(arm 0) and 0.1 + 0.8 f (arm 1), so arm 0 is best for f < 0.5, arm 1 above, and both are",
        "worth 0.5 on average: a router that ignores the request cannot do better than 0.2 regret per",
        f"round.  Feedback is immediate, or delayed: {BATCH} routes, then their {BATCH} feedbacks.",
        "",
        "Shape: least-squares fits of the mean regret curve to a + b ln t and to a + c t, over 200",
        "rounds spaced evenly in ln t from 1,000 to 10,000 (after the first rounds, when every policy",
        "still explores); the one with the larger R^2 is the shape.  Lai-Robbins: the asymptotic",
        "lower bound of any consistent policy, sum over suboptimal arms of gap / KL(arm, best) x",
        "ln t (Gaussian with known sigma: 2 sigma^2 / gap), evaluated at t = 10,000.",
        "",
    ]
    for delayed in (False, True):
        lines.append(f"## {'Delayed (batched) feedback' if delayed else 'Immediate feedback'}")
        lines.append("")
        lines.append(
            "| scenario | router | regret at 10k (median) | best arm | b (ln t) | R^2 log | c (per round) "
            "| R^2 lin | shape | time/round |"
        )
        lines.append("|---|---|---:|---:|---:|---:|---:|---:|---|---:|")
        for scenario, by_policy in results.items():
            if scenario.delayed != delayed:
                continue
            bound = lai_robbins(scenario, np.array([float(rounds)]))
            label = scenario.name + (f" (Lai-Robbins {bound[0]:.1f})" if bound is not None else "")
            for name, result in by_policy.items():
                f = fit(result.curves.mean(axis=0))
                per_round_us = 1e6 * result.seconds / (rounds * seeds)
                lines.append(
                    f"| {label} | {name} | {result.final.mean():.1f} +- {result.final.std():.1f} "
                    f"({np.median(result.final):.1f}) "
                    f"| {100 * result.best_share.mean():.1f}% | {f.log_b:.1f} | {f.log_r2:.3f} "
                    f"| {f.lin_c:.4f} | {f.lin_r2:.3f} | {f.shape} | {per_round_us:.0f} us |"
                )
        lines.append("")
    lines += reading(results)
    lines += INTERPRETATION
    lines += [
        "Plots (x axis logarithmic, so a regret growing like ln t is a straight line; the dashed",
        "black line is the Lai-Robbins bound; bands are +- 1 standard deviation over seeds):",
        "`decision_quality.png` (Bernoulli), `decision_quality_gaussian.png`,",
        "`decision_quality_contextual.png`.",
        "",
        "![Bernoulli arms](decision_quality.png)",
        "![Gaussian arms](decision_quality_gaussian.png)",
        "![Contextual scenario](decision_quality_contextual.png)",
        "",
        "Time per round is one route + one feedback through the in-memory store plus the",
        "simulation loop, two simulations at a time on a shared 2-core machine: an upper bound, not",
        "a benchmark.",
        "",
    ]
    path.write_text("\n".join(lines) + "\n" + kept)


# Written from the 10,000-round, 20-seed run (every router and environment is seeded, so a
# re-run gives the same numbers); the bullets above it are computed on every run.
INTERPRETATION = [
    "What the numbers say:",
    "",
    "- The issue's shapes: UCB1 and Thompson sampling (both reward models) grow like ln t on",
    "  both Bernoulli scenarios (R^2 of the log fit 0.988-0.997, above the linear fit's), the",
    "  seed's constant epsilon linearly (R^2 1.000 / 0.998; c = 0.010 per round with 2 arms:",
    "  epsilon 0.1 x the gap 0.1, the price of exploring forever).  Thompson's log slope b (4.6",
    "  with 2 arms) is the Lai-Robbins constant (45.1 / ln 10,000 = 4.9): it is asymptotically",
    "  optimal, and its regret at 10,000 rounds may lie under the bound's line, which is a limit",
    "  of regret / ln t, not a bound at every t.  UCB1's slope is 27.7: its bonus",
    "  sqrt(2 ln t / n) is sized for any reward in [0, 1], so it keeps re-trying the worse arm;",
    "  UCB1_TUNED, using the observed variance, has less than half its regret in every",
    "  scenario without context.",
    "- Decaying epsilon (defaults epsilon 1, decay 0.1) is log on 5 arms (R^2 1.000) and among",
    "  the best on Gaussian rewards, but on 2 Bernoulli arms 2 runs of 20 settled on the worse",
    "  arm for almost the whole run (993 each, against a median of 8.2: the mean of 109 and",
    "  the linear fit are those two runs), and with delayed feedback 1 run of 20 on 5 arms",
    "  (1,051).  Greedy routers can lock in; decay should be about the square of the smallest",
    "  gap that matters (0.01 here), at the price of more exploration.",
    "- Gaussian rewards (sigma 0.2): Thompson sampling with `reward_model: gaussian` has 1/3",
    "  (2 arms) to 1/2 (5 arms) of the regret of the Beta model fed clipped rewards; UCB1",
    "  ignores the small spread and explores as for [0, 1] rewards (10-15x the Gaussian model).",
    "- LINUCB without a useful feature (its context is then only the intercept) is a UCB whose",
    "  bonus alpha / sqrt(n + 1) is much narrower than UCB1's: lowest regret on 2 Bernoulli",
    "  arms, but on 5 arms 1 run of 20 settled on a worse arm (1,019; median 12.9): use it",
    "  for context.",
    "- Contextual scenario: LINUCB 10.0 (delayed feedback 23.4) against about 2,000 for every",
    "  other router, i.e. their 0.2 per round: a router that ignores the request cannot tell",
    "  which half of the traffic each branch is better for.",
    "- Delayed feedback (100-round batches, 1% of the run) costs little here: UCB1, UCB1_TUNED",
    "  and Thompson sampling keep their log shape; UCB1_TUNED on 5 arms pays most (43.8 ->",
    "  91.7), since a deterministic router sends a whole batch to the same branch.",
    "",
]


def reading(results: dict[Scenario, dict[str, Result]]) -> list[str]:
    """The verdicts the issue asks for, computed from these numbers (not written by hand)."""
    out = ["## Reading it", ""]
    for scenario, by_policy in results.items():
        if scenario.family == "contextual":
            lin = by_policy["LINUCB (alpha=1)"].final.mean()
            others = {n: r.final.mean() for n, r in by_policy.items() if not n.startswith("LINUCB")}
            best_other = min(others, key=lambda n: others[n])
            verdict = "beats" if lin < others[best_other] else "does NOT beat"
            feedback = "delayed" if scenario.delayed else "immediate"
            out.append(
                f"- Contextual ({feedback} feedback): LINUCB's regret {lin:.1f} {verdict} every "
                f"non-contextual router (best of them: {best_other}, {others[best_other]:.1f})."
            )
    shapes: dict[str, list[str]] = {}
    for scenario, by_policy in results.items():
        if scenario.family != "bernoulli" or scenario.delayed:
            continue
        for name, result in by_policy.items():
            shapes.setdefault(name, []).append(fit(result.curves.mean(axis=0)).shape)
    for name, found in shapes.items():
        out.append(f"- {name}: regret shape on the Bernoulli scenarios (2, 5 arms): {', '.join(found)}.")
    out.append("")
    return out


def write_plots(results: dict[Scenario, dict[str, Result]], out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: render straight to a file
    import matplotlib.pyplot as plt

    files = {
        "bernoulli": "decision_quality.png",
        "gaussian": "decision_quality_gaussian.png",
        "contextual": "decision_quality_contextual.png",
    }
    for family, filename in files.items():
        chosen = [s for s in results if s.family == family]
        columns = len(chosen) // 2 if len(chosen) > 2 else len(chosen)
        rows_n = math.ceil(len(chosen) / columns)
        fig, axes = plt.subplots(rows_n, columns, figsize=(6.5 * columns, 4.8 * rows_n), squeeze=False)
        for ax, scenario in zip(axes.flat, chosen, strict=True):
            for name, result in results[scenario].items():
                mean = result.curves.mean(axis=0)
                std = result.curves.std(axis=0)
                x = np.arange(1, mean.size + 1)
                style = "--" if "uniform" in name else "-"
                (line,) = ax.plot(x, mean, style, label=name, linewidth=1.2)
                ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.1)
            x = np.arange(1, next(iter(results[scenario].values())).curves.shape[1] + 1)
            bound = lai_robbins(scenario, x.astype(np.float64))
            if bound is not None:
                ax.plot(x, bound, "k--", linewidth=1.5, label="Lai-Robbins lower bound")
            feedback = f"delayed ({BATCH}-round batches)" if scenario.delayed else "immediate"
            ax.set_title(f"{scenario.name}, {feedback} feedback", fontsize=10)
            ax.set_xscale("log")
            ax.set_xlabel("round (log scale)")
            ax.set_ylabel("cumulative regret (mean +- 1 std)")
            # The learners set the scale (the uniform split's line leaves the top of the panel),
            # except in the contextual scenario, where every non-contextual router is that bad.
            learners = [r for n, r in results[scenario].items() if "uniform" not in n]
            top = max(float((r.curves.mean(axis=0) + r.curves.std(axis=0))[-1]) for r in learners)
            if bound is not None:
                top = max(top, float(bound[-1]))
            ax.set_ylim(0, 1.15 * top)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="upper left")
        fig.tight_layout()
        fig.savefig(out_dir / filename, dpi=100)
        plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2, help="simulations run at once (processes)")
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument(
        "--cache",
        type=Path,
        default=HERE / "out" / "decision_quality.npz",
        help="the curves, for --report-only",
    )
    parser.add_argument("--report-only", action="store_true", help="re-render the report from --cache")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.report_only:
        results = load(args.cache)
        args.rounds, args.seeds = next(iter(next(iter(results.values())).values())).curves.shape[::-1]
    else:
        results = run(args.rounds, args.seeds, args.jobs)
        save(results, args.cache)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_markdown(results, args.rounds, args.seeds, args.out_dir / "DECISION_QUALITY.md")
    write_plots(results, args.out_dir)
    print(f"done in {time.perf_counter() - started:.1f} s -> {args.out_dir}")


if __name__ == "__main__":
    main()
