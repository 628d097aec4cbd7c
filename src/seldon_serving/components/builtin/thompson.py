"""Thompson-sampling router behind image `seldonio/mab_thompson_sampling`.

Each branch has a Beta(1, 1) prior; route samples Beta(successes + 1, failures + 1)
for every branch and takes the argmax.  Feedback counts like epsilon-greedy (reward
r for n rows: r*n successes, n tries); fractional successes are valid Beta
pseudo-counts.

`reward_model: gaussian` (implementation `THOMPSON_SAMPLING` only needs it for rewards that
are not success fractions: any finite number) models each branch's rewards as normal with
unknown mean and variance: a branch never tried is routed to first; afterwards its mean is
drawn from the posterior m + s * T, T a Student-t with n + 1 degrees of freedom and
s^2 = (sum of squared deviations + prior_variance) / ((n + 1) n), i.e. a normal-inverse-gamma
posterior whose prior is one pseudo-observation with variance `prior_variance`.
"""

from __future__ import annotations

import math
import random
from typing import Any

from seldon_serving.state.base import StateHandle

from ._bandit import BanditRouter, State, refuse_unknown
from ._support import BuiltinParameterError, as_float

REWARD_MODELS = ("beta", "gaussian")
PARAMETERS = [
    "n_branches", "reward_model", "prior_variance", "seed", "verbose", "history", "branch_names", "epsilon"
]  # fmt: skip


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
        reward_model: str = "beta",
        prior_variance: float = 1.0,
        *,
        state: StateHandle | None = None,
        **unknown: Any,
    ) -> None:
        # `epsilon` is accepted and unused so the seed's mab prototype (which sets it for
        # epsilon-greedy) can switch its router image to Thompson sampling unchanged.
        del epsilon
        refuse_unknown("THOMPSON_SAMPLING", unknown, PARAMETERS)
        model = str(reward_model).strip().lower()
        if model not in REWARD_MODELS:
            raise BuiltinParameterError(
                f"parameter reward_model must be beta or gaussian, got {reward_model!r}",
                parameter="reward_model",
            )
        self.reward_model = model
        self.prior_variance = as_float("prior_variance", prior_variance, low=0.0)
        if self.prior_variance <= 0.0:
            raise BuiltinParameterError(
                f"parameter prior_variance must be > 0, got {self.prior_variance}", parameter="prior_variance"
            )
        if model == "gaussian":
            # Instance attributes over the class's: a different state shape under a different kind,
            # so counts of one model are never read as the other's.
            self.kind = "thompson_gaussian"
            self.bounded_rewards = False
            self.tracks_squares = True
        super().__init__(
            n_branches, seed=seed, verbose=verbose, history=history, branch_names=branch_names, state=state
        )
        # Python's generator: for the handful of branches a router has, one betavariate
        # per branch is several times cheaper than a vectorised numpy call.
        self._rng = random.Random(self.seed)

    def route(self, X: Any, features_names: Any = None) -> int:
        state = self.current_state()
        if self.reward_model == "gaussian":
            draws = self._gaussian_draws(state)
            top = max(draws)
            ties = [i for i, d in enumerate(draws) if d == top]  # untried branches: all infinite
            branch = ties[0] if len(ties) == 1 else ties[self._rng.randrange(len(ties))]
            if self.history:
                self.branch_history.append(branch)
            return branch
        beta = self._rng.betavariate
        draws = [
            beta(wins + 1.0, tries - wins + 1.0)
            for wins, tries in zip(state["successes"], state["tries"], strict=True)
        ]
        branch = draws.index(max(draws))  # first of any exact tie, like numpy's argmax
        if self.history:
            self.branch_history.append(branch)
        return branch

    def _gaussian_draws(self, state: State) -> list[float]:
        draws = []
        for total, squares, n in zip(state["successes"], state["squares"], state["tries"], strict=True):
            if n <= 0:
                draws.append(math.inf)
                continue
            mean = total / n
            deviations = max(squares - n * mean * mean, 0.0)
            scale = math.sqrt((deviations + self.prior_variance) / ((n + 1) * n))
            dof = n + 1
            # Student-t: a normal over the root of a chi-square (2 x gamma(dof / 2)) per degree of freedom.
            chi2 = 2.0 * self._rng.gammavariate(dof / 2.0, 1.0)
            draws.append(mean + scale * self._rng.gauss(0.0, 1.0) / math.sqrt(chi2 / dof))
        return draws

    def state_summary(self) -> dict[str, Any]:
        summary = super().state_summary()
        if self.reward_model == "gaussian":
            for entry in summary["branches"]:
                entry["posterior_mean"] = entry["value"]
            tried = [e["value"] if e["tries"] else -math.inf for e in summary["branches"]]
            summary["reward_model"] = "gaussian"
            summary["best_branch"] = tried.index(max(tried))
            return summary
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
