"""Epsilon-greedy router behind image `seldonio/mab_epsilon_greedy`.

Route: with probability 1 - epsilon the current best branch, otherwise a uniformly
chosen OTHER branch (so P(best) is exactly 1 - epsilon, as in Seldon).  Feedback
with reward r for n rows adds r*n successes (a real number: Seldon's int(r*n) turned
a one-row reward of 0.7 into a failure) and n tries to the routed branch; the best
branch is the argmax of successes/tries, ties broken at random.

`EPSILON_GREEDY` (`DecayingEpsilonGreedy`) is the textbook epsilon_n-greedy of Auer et al.
2002: in round t (1 + the tries counted so far) it explores with probability
eps_t = min(1, epsilon * K / (decay * t)) for K branches, uniformly over ALL branches, so
exploration fades as evidence grows and regret grows like log t instead of linearly.
`decay: 0` keeps epsilon constant (textbook constant epsilon, exploring all branches).
"""

from __future__ import annotations

import random
from typing import Any, ClassVar, TypeGuard

from seldon_serving.state.base import StateHandle

from ._bandit import BanditRouter, State, refuse_unknown
from ._support import BuiltinParameterError, as_float, as_int


class EpsilonGreedy(BanditRouter):
    """ROUTER: epsilon-greedy multi-armed bandit with shared, persistent counts."""

    kind = "epsilon_greedy"

    def __init__(
        self,
        n_branches: int | None = None,
        epsilon: float = 0.1,
        best_branch: int | None = None,
        verbose: bool = False,
        seed: int | None = None,
        history: bool = False,
        branch_names: str | None = None,
        *,
        state: StateHandle | None = None,
    ) -> None:
        super().__init__(
            n_branches, seed=seed, verbose=verbose, history=history, branch_names=branch_names, state=state
        )
        self.epsilon = as_float("epsilon", epsilon, low=0.0, high=1.0)
        self._rng = random.Random(self.seed)
        if best_branch is None:
            # Only used if no state is stored yet; the first writer's choice wins.
            self.initial_best = self._rng.randrange(self.n_branches)
        else:
            self.initial_best = as_int("best_branch", best_branch, minimum=0)
            if self.initial_best >= self.n_branches:
                limit = f"< n_branches ({self.n_branches})"
                raise BuiltinParameterError(
                    f"parameter best_branch must be {limit}, got {self.initial_best}", parameter="best_branch"
                )
        self.value_history: list[list[float]] = []

    def route(self, X: Any, features_names: Any = None) -> int:
        state = self.current_state()
        best: int = state["best"]
        if self.n_branches == 1:
            branch = 0
        elif self._rng.random() >= self.epsilon:
            branch = best
        else:
            # Uniform over the n-1 other branches: draw an index and skip over `best`.
            other = self._rng.randrange(self.n_branches - 1)
            branch = other if other < best else other + 1
        if self.history:
            self.branch_history.append(branch)
            self.value_history.append(_values(state))
        return branch

    def initial_state(self) -> State:
        return {**super().initial_state(), "best": self.initial_best}

    def after_feedback(self, state: State, tie_break: float) -> State:
        values = _values(state)
        top = max(values)
        ties = [i for i, value in enumerate(values) if value == top]
        best = ties[min(int(tie_break * len(ties)), len(ties) - 1)]
        return {**state, "best": best}

    def state_summary(self) -> dict[str, Any]:
        summary = super().state_summary()
        summary["epsilon"] = self.epsilon
        summary["best_branch"] = self.current_state()["best"]
        return summary

    def _uniform(self) -> float:
        return self._rng.random()

    def _usable(self, value: Any) -> TypeGuard[State]:
        return (
            super()._usable(value)
            and isinstance(value.get("best"), int)
            and 0 <= value["best"] < self.n_branches
        )


def _values(state: State) -> list[float]:
    # An untried branch is worth 0 (Seldon 1.3): no smoothing, no optimism.
    return [s / t if t else 0.0 for s, t in zip(state["successes"], state["tries"], strict=True)]


class DecayingEpsilonGreedy(EpsilonGreedy):
    """ROUTER: epsilon-greedy whose exploration rate decays as eps * K / (decay * t)."""

    PARAMETERS: ClassVar[list[str]] = [
        "n_branches", "epsilon", "decay", "best_branch", "seed", "verbose", "history", "branch_names"
    ]  # fmt: skip
    # Rewards are means, not success counts: any finite reward is accepted.
    bounded_rewards = False

    def __init__(
        self,
        n_branches: int | None = None,
        epsilon: float = 1.0,
        decay: float = 0.1,
        best_branch: int | None = None,
        verbose: bool = False,
        seed: int | None = None,
        history: bool = False,
        branch_names: str | None = None,
        *,
        state: StateHandle | None = None,
        **unknown: Any,
    ) -> None:
        refuse_unknown("EPSILON_GREEDY", unknown, self.PARAMETERS)
        super().__init__(
            n_branches,
            epsilon=1.0,  # checked below: here epsilon may exceed 1 (it is a scale)
            best_branch=best_branch,
            verbose=verbose,
            seed=seed,
            history=history,
            branch_names=branch_names,
            state=state,
        )
        self.epsilon = as_float("epsilon", epsilon, low=0.0, high=None)
        self.decay = as_float("decay", decay, low=0.0, high=None)

    def exploration_rate(self, state: State) -> float:
        """eps_t for the round after the feedback counted in `state`."""
        if self.decay == 0.0:
            return min(1.0, self.epsilon)
        t = 1 + sum(state["tries"])
        return min(1.0, self.epsilon * self.n_branches / (self.decay * t))

    def route(self, X: Any, features_names: Any = None) -> int:
        state = self.current_state()
        if self._rng.random() < self.exploration_rate(state):
            branch = self._rng.randrange(self.n_branches)
        else:
            branch = state["best"]
        if self.history:
            self.branch_history.append(branch)
            self.value_history.append(_values(state))
        return branch

    def state_summary(self) -> dict[str, Any]:
        summary = super().state_summary()
        summary["decay"] = self.decay
        summary["exploration_rate"] = self.exploration_rate(self.current_state())
        return summary
