"""Contextual bandit router `LINUCB`: LinUCB with disjoint linear models (Li, Chu, Langford &
Schapire 2010, algorithm 1).

The context x of a request is its first row (or the columns `features` names), with a
constant 1 appended (`intercept`, so a branch may have a baseline reward).  Each branch a
keeps A_a = I + sum x x^T and b_a = sum r x over the feedbacks it received; a route takes

    argmax_a  theta_a . x + alpha * sqrt(x^T A_a^-1 x),   theta_a = A_a^-1 b_a

(ties at random).  A feedback's context is the first row of the request it carries
(Seldon's feedback has the request: send it), so a feedback without request data is
refused.  A, b and the counts are the shared state, so every worker learns from every
feedback, exactly once per request.
"""

from __future__ import annotations

import math
import random
from typing import Any, TypeGuard

import numpy as np

from seldon_serving.state.base import StateHandle

from ._bandit import BanditRouter, State, refuse_unknown
from ._support import BuiltinInputError, BuiltinParameterError, as_bool, as_float

PARAMETERS = ["n_branches", "alpha", "features", "intercept", "seed", "verbose", "history", "branch_names"]


class LinUCB(BanditRouter):
    """ROUTER: LinUCB (disjoint) over the request's features, with shared, persistent state."""

    kind = "linucb"
    bounded_rewards = False

    def __init__(
        self,
        n_branches: int | None = None,
        alpha: float = 1.0,
        features: str | None = None,
        intercept: bool = True,
        seed: int | None = None,
        verbose: bool = False,
        history: bool = False,
        branch_names: str | None = None,
        *,
        state: StateHandle | None = None,
        **unknown: Any,
    ) -> None:
        refuse_unknown("LINUCB", unknown, PARAMETERS)
        super().__init__(
            n_branches, seed=seed, verbose=verbose, history=history, branch_names=branch_names, state=state
        )
        self.alpha = as_float("alpha", alpha, low=0.0)
        self.intercept = as_bool("intercept", intercept)
        self.features = _feature_list(features)
        self._rng = random.Random(self.seed)
        # (state object, A^-1 per branch, theta per branch): recomputed only when the state changed.
        self._model: tuple[State, np.ndarray, np.ndarray] | None = None

    # --- the context ------------------------------------------------------------------------

    def context(self, X: Any, names: Any) -> np.ndarray:
        """The context vector of a request: its first row (or named columns), then the intercept."""
        try:
            array = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError):
            raise BuiltinInputError(
                f"LINUCB needs numeric request data for its context, got {type(X).__name__}"
            ) from None
        if array.ndim == 1:
            array = array[np.newaxis, :]
        if array.ndim != 2 or array.shape[0] == 0:
            raise BuiltinInputError(
                f"LINUCB needs a request with at least one row of features, got shape {list(array.shape)}"
            )
        row = array[0]
        if self.features:
            row = row[self._columns(names, row.size)]
        if not np.all(np.isfinite(row)):
            raise BuiltinInputError("LINUCB's context (the request's first row) has a NaN or infinite value")
        return np.append(row, 1.0) if self.intercept else row

    def _columns(self, names: Any, width: int) -> list[int]:
        known = [str(n) for n in names] if isinstance(names, list | tuple) else []
        columns = []
        for feature in self.features:
            if feature in known:
                columns.append(known.index(feature))
            elif feature.isdigit() and int(feature) < width:
                columns.append(int(feature))
            else:
                have = ", ".join(known) if known else "none"
                raise BuiltinInputError(
                    f"LINUCB parameter features names {feature!r}, which the request does not have "
                    f"(its names: {have}; {width} columns)"
                )
        return columns

    # --- routing ----------------------------------------------------------------------------

    def scores(self, x: np.ndarray) -> list[float]:
        """theta_a . x + alpha * sqrt(x^T A_a^-1 x) for every branch."""
        state = self.current_state()
        dim = state["dim"]
        if dim is None:  # no feedback yet: A = I, b = 0 for every branch
            return [float(self.alpha * np.sqrt(x @ x))] * self.n_branches
        if dim != x.size:
            raise BuiltinInputError(_dimension_problem(x.size, dim, self.intercept))
        model = self._model
        if model is None or model[0] is not state:
            inverses = np.linalg.inv(np.asarray(state["A"], dtype=np.float64))
            thetas = np.einsum("kij,kj->ki", inverses, np.asarray(state["b"], dtype=np.float64))
            model = self._model = (state, inverses, thetas)
        _, inverses, thetas = model
        widths = np.sqrt(np.maximum(np.einsum("i,kij,j->k", x, inverses, x), 0.0))
        return [float(v) for v in thetas @ x + self.alpha * widths]

    def route(self, X: Any, features_names: Any = None) -> int:
        scores = self.scores(self.context(X, features_names))
        top = max(scores)
        ties = [i for i, s in enumerate(scores) if s == top]
        branch = ties[0] if len(ties) == 1 else ties[self._rng.randrange(len(ties))]
        if self.history:
            self.branch_history.append(branch)
        return branch

    # --- feedback ---------------------------------------------------------------------------

    def initial_state(self) -> State:
        return {**super().initial_state(), "dim": None, "A": [], "b": []}

    def feedback_context(self, features: Any, feature_names: Any) -> Any:
        if features is None or (isinstance(features, np.ndarray) and features.size == 0):
            raise BuiltinInputError(
                "LINUCB feedback needs the request (its first row is the context the reward is for)"
            )
        x = self.context(features, feature_names)
        dim = self.current_state()["dim"]
        if dim is not None and dim != x.size:
            raise BuiltinInputError(_dimension_problem(x.size, dim, self.intercept))
        return [float(v) for v in x]

    def apply_feedback(self, state: State, branch: int, reward: float, trials: int, context: Any) -> State:
        counted = super().apply_feedback(state, branch, reward, trials, context)
        x = np.asarray(context, dtype=np.float64)
        dim = state["dim"]
        if dim is None:
            dim = x.size
            a_all = [np.eye(dim).tolist() for _ in range(self.n_branches)]
            b_all = [[0.0] * dim for _ in range(self.n_branches)]
        elif dim != x.size:  # another worker fixed the dimension first
            raise BuiltinInputError(_dimension_problem(x.size, dim, self.intercept))
        else:
            a_all, b_all = list(state["A"]), list(state["b"])
        # One context per feedback (its first row), however many rows the request had.
        a_all[branch] = (np.asarray(a_all[branch]) + np.outer(x, x)).tolist()
        b_all[branch] = (np.asarray(b_all[branch]) + reward * x).tolist()
        return {**counted, "dim": dim, "A": a_all, "b": b_all}

    def _usable(self, value: Any) -> TypeGuard[State]:
        if not super()._usable(value):
            return False
        dim = value.get("dim")
        if dim is None:
            return True
        return (
            isinstance(dim, int)
            and len(value.get("A", ())) == self.n_branches
            and len(value.get("b", ())) == self.n_branches
        )

    def state_summary(self) -> dict[str, Any]:
        summary = super().state_summary()
        state = self.current_state()
        summary["alpha"] = self.alpha
        # The best on average (which branch a request goes to depends on its features).
        means = [b["value"] if b["tries"] else -math.inf for b in summary["branches"]]
        summary["best_branch"] = means.index(max(means))
        summary["context_features"] = state["dim"]
        if state["dim"] is not None:
            thetas = np.linalg.solve(np.asarray(state["A"]), np.asarray(state["b"])[..., np.newaxis])[..., 0]
            for entry, theta in zip(summary["branches"], thetas, strict=True):
                entry["theta"] = [round(float(v), 6) for v in theta]
        return summary

    def _uniform(self) -> float:
        return 0.0  # nothing to break after a feedback: route breaks its own ties


def _feature_list(features: Any) -> list[str]:
    if features is None:
        return []
    names = [f.strip() for f in str(features).replace(",", ":").split(":") if f.strip()]
    if not names:
        raise BuiltinParameterError(
            f"parameter features must name columns (a:b:c), got {features!r}", parameter="features"
        )
    return names


def _dimension_problem(size: int, dim: int, intercept: bool) -> str:
    extra = " (with the intercept)" if intercept else ""
    return (
        f"LINUCB's context has {size} values{extra} but this router learned on {dim}: send the same features"
    )
