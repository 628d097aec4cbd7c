"""Seldon's online Mahalanobis outlier score (SPEC 8, SELDON-REFERENCE 8.1 and 8.2), as a pure
function of JSON state, so that the scores behind Seldon's image names equal Seldon's own code.

One batch X (b rows x p features) against the state (n rows seen, mean, covariance, clip bounds),
n' = min(n, max_n) when max_n > 0, else n:

1. (later images only) after start_clip rows, Xc = X clipped to mean +- n_stdev * stdev; the 0.2
   and 0.3 images never clip (Xc = X).  Statistics use Xc; the score uses the unclipped X.
2. Running means M_i of the batch's first i+1 rows over n' + i + 1 rows; offsets O_0 = mean,
   O_i = M_{i-1}.
3. C_new = ((n'-1) C + sum_i (n'+i)/(n'+i+1) d_i d_i^T) / D with d_i = Xc_i - O_i and
   D = n' + max(1, b-1) (0.3 and later: a one-row batch divides by n'+1), D = n' + b - 1 (0.2).
4. V = top-k eigenvectors of C_new; S = V^T C V with the OLD C (zeros before the first batch).
5. Rows are scored against a per-row inverse: none (score 0) until |det S| > 1e-8, where S
   itself is grown row by row; from then on Seldon's Sherman-Morrison recursion.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ._support import BuiltinInputError

log = logging.getLogger(__name__)

Variant = Literal["0.2", "0.3", "core"]
# A different variant's statistics are not these numbers: the kind keeps them apart.
KINDS: dict[str, str] = {
    "0.2": "outlier_mahalanobis/seldon-0.2",
    "0.3": "outlier_mahalanobis/seldon-0.3",
    "core": "outlier_mahalanobis/seldon-core",
}
# Seldon's test of an invertible projected covariance: an absolute bound on its determinant.
_DET_EPSILON = 1e-8


@dataclass(frozen=True, slots=True)
class SeldonParams:
    variant: Variant = "0.3"
    threshold: float = 25.0
    n_components: int = 3
    n_stdev: float = 3.0
    start_clip: int = 50
    max_n: int = -1  # <= 0: unbounded

    @property
    def kind(self) -> str:
        return KINDS[self.variant]


def empty_state(kind: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "n": 0,
        "n_features": None,
        "mean": None,
        "cov": None,
        "clip_lo": None,
        "clip_hi": None,
        "nb_outliers": 0,
    }


def observe(
    state: dict[str, Any] | None, X: np.ndarray, params: SeldonParams
) -> tuple[dict[str, Any], np.ndarray]:
    """(state after absorbing X, one score per row of X).  Pure: `state` is not modified."""
    b, p = X.shape
    if not isinstance(state, dict) or state.get("kind") != params.kind or not state.get("n"):
        state = empty_state(params.kind)
    total = int(state["n"])
    if total and state["n_features"] != p:
        raise BuiltinInputError(
            f"outlier detector has seen rows of {state['n_features']} features; this request has {p}"
        )
    mean, cov = stored_statistics(state, p) if total else (None, None)
    if total and mean is None:
        # Statistics that are not finite numbers (written before huge inputs were refused)
        # would fail every request from now on: start again from nothing.
        log.warning("outlier detector state holds unusable statistics; starting afresh")
        state, total = empty_state(params.kind), 0
    if mean is None:
        mean = np.zeros(p)
    n = total if params.max_n <= 0 else min(total, params.max_n)

    clipped = X
    if params.variant == "core" and total > params.start_clip and state["clip_lo"] is not None:
        clipped = np.clip(X, state["clip_lo"], state["clip_hi"])

    steps = np.arange(b, dtype=np.float64)
    partial_means = np.cumsum(clipped, axis=0) / (steps + 1.0)[:, None]
    means = mean + ((steps + 1.0) / (steps + n + 1.0))[:, None] * (partial_means - mean)
    offsets = np.vstack([mean[None, :], means[:-1]])
    deviations = clipped - offsets
    scatter = (deviations * ((n + steps) / (n + steps + 1.0))[:, None]).T @ deviations
    # 0.2's very first one-row request divides 0 by 0 (Seldon's image fails it, and every later
    # one-row request, for good): that one takes 0.3's divisor (its covariance is 0 either way).
    one_less = n + b - 1 if params.variant == "0.2" and n + b - 1 > 0 else n + max(1, b - 1)
    denominator = float(one_less)
    new_cov = scatter / denominator if cov is None else (n - 1.0) / denominator * cov + scatter / denominator

    k = min(params.n_components, p)
    basis = np.linalg.eigh(new_cov)[1][:, p - k :]  # ascending: the last k are the top ones
    projected_offsets = offsets @ basis
    differences = X @ basis - projected_offsets
    absorbed = clipped @ basis - projected_offsets
    projected_cov = np.zeros((k, k)) if cov is None else basis.T @ cov @ basis
    scores = _row_scores(differences, absorbed, projected_cov, n)

    new_mean = means[-1]
    total += b
    clip_lo = clip_hi = None
    if params.variant == "core" and total > params.start_clip:
        spread = params.n_stdev * np.sqrt(np.clip(np.diag(new_cov), 0.0, None))
        clip_lo, clip_hi = (new_mean - spread).tolist(), (new_mean + spread).tolist()
    new_state = {
        "kind": params.kind,
        "n": total,
        "n_features": p,
        "mean": new_mean.tolist(),
        "cov": new_cov.tolist(),
        "clip_lo": clip_lo,
        "clip_hi": clip_hi,
        "nb_outliers": int(state["nb_outliers"]) + int(np.count_nonzero(scores > params.threshold)),
    }
    return new_state, scores


def stored_statistics(state: dict[str, Any], p: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The stored mean and covariance, or (None, None) when they are not finite numbers of
    the right shape."""
    try:
        mean = np.asarray(state["mean"], dtype=np.float64)
        cov = np.asarray(state["cov"], dtype=np.float64)
    except (TypeError, ValueError):
        return None, None
    if mean.shape != (p,) or cov.shape != (p, p) or not (np.isfinite(mean).all() and np.isfinite(cov).all()):
        return None, None
    return mean, cov


def _row_scores(
    differences: np.ndarray, absorbed: np.ndarray, projected_cov: np.ndarray, n: int
) -> np.ndarray:
    """Seldon's per-row inverse covariance walk (SELDON-REFERENCE 8.1 step 6), then the scores."""
    b = differences.shape[0]
    scores = np.zeros(b)
    cov = projected_cov
    inverse: np.ndarray | None = None
    previous: np.ndarray | None = None  # the inverse of the row before (Seldon's all_C_inv[i-1])
    for i in range(b):
        count = n + i
        if inverse is None:
            with np.errstate(over="ignore"):  # a determinant past float64 is "invertible" for Seldon too
                determinant = float(np.linalg.det(cov))
            if abs(determinant) > _DET_EPSILON:
                inverse = previous = np.linalg.inv(cov)
            elif count > 0:
                e = absorbed[i]
                cov = (count - 1.0) / count * cov + np.outer(e, e) / (count + 1.0)
        else:
            assert previous is not None
            # Seldon rescales the previous row's inverse by (N-1)/(N-2) and removes the
            # previous row's rank-one term; N-2 > 0 here, as an inverse needs >= 2 rows.
            scaled = (count - 1.0) / (count - 2.0) * previous
            e = absorbed[i - 1]
            term = np.outer(e, e) / float(count) @ scaled
            previous = scaled - (1.0 / (1.0 + float(np.trace(term)))) * (scaled @ term)
        if inverse is not None and previous is not None:
            d = differences[i]
            scores[i] = d @ previous @ d
    return scores
