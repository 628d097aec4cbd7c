"""Thompson-sampling router behind image `seldonio/mab_thompson_sampling`.

Each branch has a Beta(1, 1) prior; route samples Beta(successes + 1, failures + 1)
for every branch and takes the argmax.  Feedback counts like epsilon-greedy (reward
r for n rows: r*n successes, n tries); fractional successes are valid Beta
pseudo-counts.
"""

from __future__ import annotations

import random
from typing import Any

from seldon_serving.state.base import StateHandle

from ._bandit import BanditRouter


class ThompsonSampling(BanditRouter):
    """ROUTER: Bernoulli Thompson sampling with shared, persistent counts."""

    kind = "thompson_sampling"

    def __init__(
        self,
        n_branches: int | None = None,
        verbose: bool = False,
        seed: int | None = None,
        history: bool = False,
        branch_names: str | None = None,
        epsilon: float | None = None,
        *,
        state: StateHandle | None = None,
    ) -> None:
        # `epsilon` is accepted and unused so the seed's mab prototype (which sets it for
        # epsilon-greedy) can switch its router image to Thompson sampling unchanged.
        del epsilon
        super().__init__(
            n_branches, seed=seed, verbose=verbose, history=history, branch_names=branch_names, state=state
        )
        # Python's generator: for the handful of branches a router has, one betavariate
        # per branch is several times cheaper than a vectorised numpy call.
        self._rng = random.Random(self.seed)

    def route(self, X: Any, features_names: Any = None) -> int:
        state = self.current_state()
        beta = self._rng.betavariate
        draws = [
            beta(wins + 1.0, tries - wins + 1.0)
            for wins, tries in zip(state["successes"], state["tries"], strict=True)
        ]
        branch = draws.index(max(draws))  # first of any exact tie, like numpy's argmax
        if self.history:
            self.branch_history.append(branch)
        return branch

    def state_summary(self) -> dict[str, Any]:
        summary = super().state_summary()
        means = []
        for entry in summary["branches"]:
            entry["failures"] = entry["tries"] - entry["successes"]
            # Posterior mean of Beta(s + 1, f + 1): what the router currently believes.
            entry["posterior_mean"] = (entry["successes"] + 1.0) / (entry["tries"] + 2.0)
            means.append(entry["posterior_mean"])
        summary["best_branch"] = means.index(max(means))
        return summary

    def _uniform(self) -> float:
        # No tie to break after a feedback; not drawing keeps the route sequence of a
        # seeded router independent of how many feedbacks arrived.
        return 0.0
