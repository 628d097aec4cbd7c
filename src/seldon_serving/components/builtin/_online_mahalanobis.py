"""The online Mahalanobis outlier score (SPEC 8), as a pure function of JSON state.

One batch X (b rows x p features) against the state (n rows seen, mean, covariance,
clip bounds):

1. n' = min(n, max_n) when max_n > 0, else n: the count the update weighs the past by.
2. After start_clip rows, rows are clipped to mean +- n_stdev * stdev for the update
   (the score itself uses the unclipped row).
3. Textbook running update, dividing by n' + b - 1 whatever b: without clipping and
   max_n the mean and covariance are numpy's mean and cov(ddof=1) of every row seen.
4. V = top n_components eigenvectors of the UPDATED covariance.
5. Row i is scored against the state before it (the old state plus rows 0..i-1 of the
   batch): score_i = d^T S_i^-1 d with d = (x_i - mean_i) V and S_i = V^T C_i V.  S_i^-1
   is carried row to row with Sherman-Morrison; rows seen while S_i is singular score 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._support import BuiltinInputError

KIND = "outlier_mahalanobis"
log = logging.getLogger(__name__)

# S is "singular" when its smallest eigenvalue is this small relative to its largest.
_RELATIVE_RANK_TOL = 1e-10
# ...or when its largest is below round-off of the data's magnitude (identical rows
# leave ~1e-32 * |mean|^2 of noise, which must not be inverted into huge scores).
_ABSOLUTE_SCALE_TOL = 1e-12


@dataclass(frozen=True, slots=True)
class MahalanobisParams:
    threshold: float = 25.0
    n_components: int = 3
    n_stdev: float = 3.0
    start_clip: int = 50
    max_n: int = -1  # <= 0: unbounded


def empty_state() -> dict[str, Any]:
    return {
        "kind": KIND,
        "n": 0,
        "n_features": None,
        "mean": None,
        "cov": None,
        "clip_lo": None,
        "clip_hi": None,
        "nb_outliers": 0,
    }


def observe(
    state: dict[str, Any] | None, X: np.ndarray, params: MahalanobisParams
) -> tuple[dict[str, Any], np.ndarray]:
    """(state after absorbing X, one score per row of X).  Pure: `state` is not modified."""
    b, p = X.shape
    if not isinstance(state, dict) or state.get("kind") != KIND or not state.get("n"):
        state = empty_state()
    n = int(state["n"])
    if n and state["n_features"] != p:
        raise BuiltinInputError(
            f"outlier detector has seen rows of {state['n_features']} features; this request has {p}"
        )
    mean = cov = None
    if n:
        mean, cov = _statistics(state, p)
        if mean is None:
            # Statistics that are not finite numbers (written before huge inputs were
            # refused) would fail every request from now on: start again from nothing.
            log.warning("outlier detector state holds unusable statistics; starting afresh")
            state, n = empty_state(), 0
    if mean is None or cov is None:
        mean, cov = np.zeros(p), np.zeros((p, p))
    n_eff = n if params.max_n <= 0 else min(n, params.max_n)

    clipped = X
    if state["clip_lo"] is not None and n > params.start_clip:
        clipped = np.clip(X, state["clip_lo"], state["clip_hi"])

    # offsets[i] = the running mean before row i; weights: Welford's n/(n+1) per row.
    before = n_eff + np.arange(b, dtype=np.float64)
    means_after = (n_eff * mean + np.cumsum(clipped, axis=0)) / (before + 1.0)[:, None]
    offsets = np.vstack([mean[None, :], means_after[:-1]])
    deviations = clipped - offsets
    scatter = (deviations * (before / (before + 1.0))[:, None]).T @ deviations
    denominator = n_eff + b - 1
    # denominator 0 only for the very first row alone, whose covariance is 0 anyway.
    new_cov = ((n_eff - 1) * cov + scatter) / denominator if denominator > 0 else np.zeros((p, p))

    k = min(params.n_components, p)
    _, vectors = np.linalg.eigh(new_cov)
    basis = vectors[:, p - k :]  # eigh sorts ascending: the last k are the top ones
    projected_offsets = offsets @ basis
    distances = X @ basis - projected_offsets
    absorbed = clipped @ basis - projected_offsets
    floor = (_ABSOLUTE_SCALE_TOL * float(np.abs(offsets).max(initial=0.0))) ** 2
    scores = _row_scores(distances, absorbed, basis.T @ cov @ basis, n_eff, floor)

    new_mean = means_after[-1]
    total = n + b
    clip_lo = clip_hi = None
    if total > params.start_clip:
        spread = params.n_stdev * np.sqrt(np.clip(np.diag(new_cov), 0.0, None))
        clip_lo, clip_hi = (new_mean - spread).tolist(), (new_mean + spread).tolist()
    new_state = {
        "kind": KIND,
        "n": total,
        "n_features": p,
        "mean": new_mean.tolist(),
        "cov": new_cov.tolist(),
        "clip_lo": clip_lo,
        "clip_hi": clip_hi,
        "nb_outliers": int(state["nb_outliers"]) + int(np.count_nonzero(scores > params.threshold)),
    }
    return new_state, scores


def _statistics(state: dict[str, Any], p: int) -> tuple[np.ndarray | None, np.ndarray | None]:
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
    distances: np.ndarray, absorbed: np.ndarray, projected_cov: np.ndarray, n_eff: int, floor: float
) -> np.ndarray:
    """Score each row against the projected covariance of everything before it."""
    b = distances.shape[0]
    scores = np.zeros(b)
    cov = projected_cov
    inverse: np.ndarray | None = None
    for i in range(b):
        count = n_eff + i  # rows behind the state row i is scored against
        if inverse is None and _invertible(cov, floor):
            inverse = np.linalg.inv(cov)
        if inverse is not None:
            d = distances[i]
            scores[i] = d @ inverse @ d
        if count == 0 or i == b - 1:
            continue  # nothing to rescale yet / no later row needs the update
        e = absorbed[i]
        if inverse is None:
            # Still singular: keep the covariance itself, C' = (N-1)/N C + e e^T/(N+1).
            cov = ((count - 1) / count) * cov + np.outer(e, e) / (count + 1)
        else:
            # Sherman-Morrison on the same update: A = (N-1)/N C, A^-1 = N/(N-1) C^-1,
            # (A + u u^T)^-1 = A^-1 - A^-1 u u^T A^-1 / (1 + u^T A^-1 u), u = e / sqrt(N+1).
            scaled = inverse * (count / (count - 1))
            u = scaled @ e
            inverse = scaled - np.outer(u, u) / (count + 1 + e @ u)
    return scores


def _invertible(matrix: np.ndarray, floor: float) -> bool:
    eigenvalues = np.linalg.eigvalsh(matrix)
    largest = float(eigenvalues[-1])
    return largest > floor and float(eigenvalues[0]) > _RELATIVE_RANK_TOL * largest
