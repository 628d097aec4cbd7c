"""What the multi-armed-bandit routers share: parameters, the shared state and the
feedback rule.

State is data kept through a `StateHandle`, so it survives restarts and every worker
serving the node sees the same counts:

    {"kind": str, "n_branches": int, "tries": [int...], "successes": [float...], ...}

("successes" is the sum of rewards; routers that need the rewards' spread keep
"squares", their sum of squares, too.)

Each worker keeps a cached copy and re-reads it only when `handle.version()` moved.
Every feedback is one `handle.update(fn, once=puid)` where `fn` is a pure function of
the stored value: two workers counting at once never lose an update, and a feedback
delivered twice for one request (engine retries) is counted once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard

import numpy as np

from seldon_serving.state.base import JSON, StateHandle

from ._support import (
    BuiltinInputError,
    BuiltinParameterError,
    as_bool,
    as_int,
    as_seed,
    local_handle,
    required,
)

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


def checked_real_reward(reward: Any) -> float:
    """A reward of any finite size: routers that estimate means, not success rates."""
    try:
        value = float(reward)
    except (TypeError, ValueError):
        raise BuiltinInputError(f"reward must be a number, got {reward!r}") from None
    if not math.isfinite(value):
        raise BuiltinInputError(f"reward must be a finite number, got {value}")
    return value


def refuse_unknown(router: str, unknown: Mapping[str, Any], known: list[str]) -> None:
    """A one-sentence error for a parameter this router does not take (a typo, or another
    router's parameter left in a manifest whose implementation was switched)."""
    if unknown:
        name = sorted(unknown)[0]
        raise BuiltinParameterError(
            f"{router} has no parameter {name} (its parameters: {', '.join(known)})", parameter=name
        )


class BanditRouter:
    """Base of the bandit routers (not a component itself)."""

    kind = "bandit"
    # Rewards a feedback may carry: success fractions in [0, 1], or (None) any finite number.
    bounded_rewards: bool = True
    # Whether the state keeps each branch's sum of squared rewards (for variance estimates).
    tracks_squares: bool = False

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
        state: State = {
            "kind": self.kind,
            "n_branches": self.n_branches,
            "tries": [0] * self.n_branches,
            "successes": [0.0] * self.n_branches,
        }
        if self.tracks_squares:
            state["squares"] = [0.0] * self.n_branches
        return state

    def feedback_context(self, features: Any, feature_names: Any) -> Any:
        """What of the feedback's request the update needs besides the reward (None: nothing)."""
        return None

    def apply_feedback(self, state: State, branch: int, reward: float, trials: int, context: Any) -> State:
        """The counts after one feedback (pure): `reward` for each of `trials` rows."""
        tries = list(state["tries"])
        wins = list(state["successes"])
        tries[branch] += trials
        wins[branch] += reward * trials
        new = {**state, "tries": tries, "successes": wins}
        if self.tracks_squares:
            squares = list(state["squares"])
            squares[branch] += reward * reward * trials
            new["squares"] = squares
        return new

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
        value = checked_reward(reward) if self.bounded_rewards else checked_real_reward(reward)
        trials = feedback_trials(features)
        context = self.feedback_context(features, feature_names)
        # The tie-break draw is taken here, outside `fn`, so `fn` stays a pure function
        # of the stored state (a store may call it again; the result must not change).
        tie_break = self._uniform()
        update = self._feedback_updater(branch, value, trials, tie_break, context)
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
        self, branch: int, reward: float, trials: int, tie_break: float, context: Any = None
    ) -> Callable[[JSON | None], JSON]:
        def update(current: JSON | None) -> JSON:
            state: State = current if self._usable(current) else self.initial_state()
            return self.after_feedback(self.apply_feedback(state, branch, reward, trials, context), tie_break)

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
            and (not self.tracks_squares or len(value.get("squares", ())) == self.n_branches)
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
