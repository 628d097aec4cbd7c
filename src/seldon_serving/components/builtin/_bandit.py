"""What the two multi-armed-bandit routers share: parameters, the shared state and
the feedback rule.

State is data kept through a `StateHandle`, so it survives restarts and every worker
serving the node sees the same counts:

    {"kind": str, "n_branches": int, "tries": [int...], "successes": [float...], ...}

Each worker keeps a cached copy and re-reads it only when `handle.version()` moved.
Every feedback is one `handle.update(fn, once=puid)` where `fn` is a pure function of
the stored value: two workers counting at once never lose an update, and a feedback
delivered twice for one request (engine retries) is counted once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeGuard

import numpy as np

from seldon_serving.state.base import JSON, StateHandle

from ._support import BuiltinInputError, as_bool, as_int, as_seed, local_handle, required

log = logging.getLogger(__name__)

State = dict[str, Any]


def feedback_trials(features: Any) -> int:
    """How many Bernoulli trials one feedback counts: its rows, and at least one.

    A feedback without request data (Seldon issue #336: only the response was sent)
    still carries a reward, so it counts as one trial instead of silently nothing.
    """
    if isinstance(features, np.ndarray):
        return 1 if features.ndim == 0 or features.size == 0 else int(features.shape[0])
    if isinstance(features, list | tuple):
        return max(1, len(features))
    return 1  # strData / binData / jsonData: one request


def checked_reward(reward: Any) -> float:
    # Strings are accepted because some clients send "0.9" (#336); anything that is
    # not a fraction of successes is refused rather than corrupting the counts.
    try:
        value = float(reward)
    except (TypeError, ValueError):
        raise BuiltinInputError(f"reward must be a number in [0, 1], got {reward!r}") from None
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise BuiltinInputError(
            f"reward must be in [0, 1] (the fraction of successes in the batch), got {value}"
        )
    return value


class BanditRouter:
    """Base of the epsilon-greedy and Thompson-sampling routers (not a component itself)."""

    kind = "bandit"

    def __init__(
        self,
        n_branches: Any,
        *,
        seed: Any = None,
        verbose: Any = False,
        history: Any = False,
        branch_names: str | None = None,
        state: StateHandle | None = None,
    ) -> None:
        n_branches = required("n_branches", n_branches, "the number of child branches")
        self.n_branches = as_int("n_branches", n_branches, minimum=1)
        self.seed = as_seed(seed)
        self.verbose = as_bool("verbose", verbose)
        self.history = as_bool("history", history)
        self.branch_names = self._names(branch_names)
        self.handle = state if state is not None else local_handle(self.kind)
        self.branch_history: list[int] = []
        # (version, state) in ONE attribute so a thread never pairs one with the other's partner.
        self._cache: tuple[int, State] | None = None

    # --- what each router defines ----------------------------------------------------

    def initial_state(self) -> State:
        return {
            "kind": self.kind,
            "n_branches": self.n_branches,
            "tries": [0] * self.n_branches,
            "successes": [0.0] * self.n_branches,
        }

    def after_feedback(self, state: State, tie_break: float) -> State:
        """Derived fields recomputed after the counts changed (pure; may return state)."""
        return state

    # --- shared state access ------------------------------------------------------------

    def current_state(self) -> State:
        """The shared state, re-read only when another writer changed it."""
        version = self.handle.version()
        cache = self._cache
        if cache is not None and cache[0] == version:
            return cache[1]
        # version first, then value: a write in between only causes one extra re-read.
        value = self.handle.get()
        if not self._usable(value):
            value = self.handle.update(self._fresh_unless_usable)
            version = -1
        state: State = value
        self._cache = (version, state)
        return state

    def send_feedback(
        self,
        features: Any,
        feature_names: Any,
        reward: Any,
        truth: Any,
        routing: Any = None,
        *,
        puid: str | None = None,
    ) -> None:
        """Count `reward` x rows successes and `rows` tries on the branch this router chose."""
        branch = self._checked_routing(routing)
        value = checked_reward(reward)
        trials = feedback_trials(features)
        # The tie-break draw is taken here, outside `fn`, so `fn` stays a pure function
        # of the stored state (a store may call it again; the result must not change).
        tie_break = self._uniform()
        update = self._feedback_updater(branch, value * trials, trials, tie_break)
        new_state = self.handle.update(update, once=str(puid) if puid else None)
        # Our own write moved the version; -1 makes the next read fetch it (another
        # worker may have written right after us, so the returned value may be stale).
        self._cache = (-1, new_state)
        if self.verbose:
            log.info(
                "%s feedback branch=%d reward=%s trials=%d -> %s", self.kind, branch, value, trials, new_state
            )

    def state_summary(self) -> dict[str, Any]:
        state = self.current_state()
        branches = []
        for i in range(self.n_branches):
            tries, successes = state["tries"][i], state["successes"][i]
            branches.append(
                {
                    "branch": i,
                    "name": self.branch_names[i],
                    "tries": tries,
                    "successes": successes,
                    "value": successes / tries if tries else 0.0,
                }
            )
        return {"router": self.kind, "n_branches": self.n_branches, "branches": branches}

    # --- helpers ------------------------------------------------------------------------

    def _uniform(self) -> float:
        raise NotImplementedError

    def _feedback_updater(
        self, branch: int, successes: float, trials: int, tie_break: float
    ) -> Callable[[JSON | None], JSON]:
        def update(current: JSON | None) -> JSON:
            state: State = current if self._usable(current) else self.initial_state()
            tries = list(state["tries"])
            wins = list(state["successes"])
            tries[branch] += trials
            wins[branch] += successes
            return self.after_feedback({**state, "tries": tries, "successes": wins}, tie_break)

        return update

    def _fresh_unless_usable(self, current: JSON | None) -> JSON:
        # Another worker may have initialised the key first: keep its state.
        return current if self._usable(current) else self.initial_state()

    def _usable(self, value: JSON | None) -> TypeGuard[State]:
        # State left by a differently configured node (other router kind or branch
        # count) cannot be reused: start afresh rather than index out of range.
        return (
            isinstance(value, dict)
            and value.get("kind") == self.kind
            and value.get("n_branches") == self.n_branches
            and len(value.get("tries", ())) == self.n_branches
            and len(value.get("successes", ())) == self.n_branches
        )

    def _checked_routing(self, routing: Any) -> int:
        if routing is None:
            raise BuiltinInputError(
                "feedback carries no routing for this router: send the response's meta.routing "
                "(the branch this router chose) with the feedback"
            )
        if isinstance(routing, bool):
            raise BuiltinInputError(f"routing must be a branch index, got {routing!r}")
        try:
            branch = int(routing)
        except (TypeError, ValueError):
            raise BuiltinInputError(f"routing must be a branch index, got {routing!r}") from None
        if not 0 <= branch < self.n_branches:
            raise BuiltinInputError(
                f"routing {branch} is not a branch of this router (0..{self.n_branches - 1})"
            )
        return branch

    def _names(self, branch_names: str | None) -> list[str]:
        # Informational only (as in Seldon); a count that does not match is ignored
        # with a warning rather than refusing a manifest Seldon accepted.
        default = [str(i) for i in range(self.n_branches)]
        if not branch_names:
            return default
        names = str(branch_names).split(":")
        if len(names) != self.n_branches:
            log.warning("branch_names %r does not name %d branches; ignored", branch_names, self.n_branches)
            return default
        return names
