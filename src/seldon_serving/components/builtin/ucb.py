"""Upper-confidence-bound routers: `UCB1` and `UCB1_TUNED` (Auer, Cesa-Bianchi & Fischer 2002).

Each route sends the request to the branch with the largest index, computed from the shared
counts (n_i tries, mean reward m_i, t = the tries of all branches together):

    UCB1:        m_i + sqrt(2 ln t / n_i)
    UCB1_TUNED:  m_i + sqrt(ln t / n_i * min(1/4, V_i)),  V_i = var_i + sqrt(2 ln t / n_i)

A branch never tried is taken first (at random among several).  The bounds assume rewards in
[0, 1] (the tuned one uses the observed variance, so it explores less when rewards are
steady); larger rewards are accepted and simply make UCB1 explore relatively less.  Exact
ties are broken at random, so workers sharing the counts do not all send a burst of
requests to the same branch before the next feedback arrives.
"""

from __future__ import annotations

import math
import random
from typing import Any

from seldon_serving.state.base import StateHandle

from ._bandit import BanditRouter, State, refuse_unknown

PARAMETERS = ["n_branches", "seed", "verbose", "history", "branch_names"]


def argmax_random(values: list[float], rng: random.Random) -> int:
    """Index of the largest value, a uniformly chosen one among exact ties."""
    top = max(values)
    ties = [i for i, v in enumerate(values) if v == top]
    return ties[0] if len(ties) == 1 else ties[rng.randrange(len(ties))]


def ucb1_indexes(state: State) -> list[float]:
    """UCB1's index of every branch (infinity for a branch never tried)."""
    tries, sums = state["tries"], state["successes"]
    log_t = math.log(max(sum(tries), 1))
    return [
        s / n + math.sqrt(2.0 * log_t / n) if n > 0 else math.inf for s, n in zip(sums, tries, strict=True)
    ]


def ucb1_tuned_indexes(state: State) -> list[float]:
    """UCB1-TUNED's index of every branch (infinity for a branch never tried)."""
    tries, sums, squares = state["tries"], state["successes"], state["squares"]
    log_t = math.log(max(sum(tries), 1))
    indexes = []
    for s, q, n in zip(sums, squares, tries, strict=True):
        if n <= 0:
            indexes.append(math.inf)
            continue
        mean = s / n
        variance = max(q / n - mean * mean, 0.0)  # rounding can make it a hair negative
        bound = variance + math.sqrt(2.0 * log_t / n)
        indexes.append(mean + math.sqrt(log_t / n * min(0.25, bound)))
    return indexes


class UCB1(BanditRouter):
    """ROUTER: UCB1 with shared, persistent counts."""

    kind = "ucb1"
    bounded_rewards = False

    def __init__(
        self,
        n_branches: int | None = None,
        seed: int | None = None,
        verbose: bool = False,
        history: bool = False,
        branch_names: str | None = None,
        *,
        state: StateHandle | None = None,
        **unknown: Any,
    ) -> None:
        refuse_unknown(type(self).implementation_name(), unknown, PARAMETERS)
        super().__init__(
            n_branches, seed=seed, verbose=verbose, history=history, branch_names=branch_names, state=state
        )
        self._rng = random.Random(self.seed)

    @classmethod
    def implementation_name(cls) -> str:
        return "UCB1"

    def indexes(self, state: State) -> list[float]:
        return ucb1_indexes(state)

    def route(self, X: Any, features_names: Any = None) -> int:
        branch = argmax_random(self.indexes(self.current_state()), self._rng)
        if self.history:
            self.branch_history.append(branch)
        return branch

    def state_summary(self) -> dict[str, Any]:
        summary = super().state_summary()
        state = self.current_state()
        for entry, index in zip(summary["branches"], self.indexes(state), strict=True):
            entry["index"] = index if math.isfinite(index) else None  # JSON has no infinity
        means = [entry["value"] if entry["tries"] else -math.inf for entry in summary["branches"]]
        summary["best_branch"] = means.index(max(means))
        return summary

    def _uniform(self) -> float:
        return 0.0  # nothing to break after a feedback: route breaks its own ties


class UCB1Tuned(UCB1):
    """ROUTER: UCB1-TUNED (variance-aware UCB1) with shared, persistent counts."""

    kind = "ucb1_tuned"
    tracks_squares = True

    @classmethod
    def implementation_name(cls) -> str:
        return "UCB1_TUNED"

    def indexes(self, state: State) -> list[float]:
        return ucb1_tuned_indexes(state)
