"""`implementation: MAHALANOBIS_DETECTOR`: an online Mahalanobis outlier detector that improves
on Seldon's (SPEC 8; Seldon's own maths are `mahalanobis.py`):

- each row is scored against the mean and covariance (ddof 1) of the rows absorbed BEFORE it,
  then absorbed (Seldon's projection uses a covariance that already holds the row);
- rows flagged as outliers are kept out of the running statistics, so a burst of outliers does
  not widen the covariance and hide the next ones (robust); the distance is scaled by the
  consistency factor of that trimming (the covariance of the rows kept is narrower than the
  distribution's), so a normal row's distance keeps its chi-square scale;
- the threshold is a raw score (`threshold`) or a quantile (`threshold_quantile`, default
  0.999): the quantile of a new normal row's distance given the rows behind the estimate
  (Hotelling's T^2, tending to chi-square with k degrees of freedom), so 0.999 means one false
  alarm in a thousand normal rows for any `n_components` and from the first rows on.

`n_components` (default: every feature) keeps the top principal components of the standardized
features (Seldon's keeps those of the raw covariance, where the largest-valued features win);
`max_n` caps the count the past is weighed by (a detector that follows a slowly moving
distribution).  A lasting jump of the whole stream is flagged row after row: it is
never absorbed, by design (delete the node's state to start afresh).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from seldon_serving.components.distributions import chi2_quantile, gamma_cdf, score_quantile
from seldon_serving.state.base import StateHandle

from ._online_mahalanobis import stored_statistics
from ._support import BuiltinInputError, BuiltinParameterError, as_float, as_int
from .mahalanobis import OnlineDetector, checked_max_n

KIND = "mahalanobis_detector"
DEFAULT_QUANTILE = 0.999
# The covariance is too close to singular to invert when its smallest scored eigenvalue is
# this small relative to its largest (identical rows, or a constant feature).
_RELATIVE_TOLERANCE = 1e-10


class MahalanobisDetector(OnlineDetector):
    """TRANSFORMER (or MODEL): flags rows far from the inliers seen so far."""

    PARAMETERS: ClassVar[list[str]] = ["threshold", "threshold_quantile", "n_components", "max_n", "seed"]

    def __init__(
        self,
        threshold: float | None = None,
        threshold_quantile: float | None = None,
        n_components: int | None = None,
        max_n: int = -1,
        seed: int | None = None,
        *,
        state: StateHandle | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            name = sorted(unknown)[0]
            raise BuiltinParameterError(
                f"MAHALANOBIS_DETECTOR has no parameter {name} "
                f"(its parameters: {', '.join(self.PARAMETERS)})",
                parameter=name,
            )
        if threshold is not None and threshold_quantile is not None:
            raise BuiltinParameterError(
                "MAHALANOBIS_DETECTOR takes threshold (a raw score) or threshold_quantile, not both",
                parameter="threshold_quantile",
            )
        self.raw_threshold = None if threshold is None else as_float("threshold", threshold, low=0.0)
        self.quantile = DEFAULT_QUANTILE
        if threshold_quantile is not None:
            self.quantile = as_float("threshold_quantile", threshold_quantile, low=0.0, high=1.0)
            if not 0.0 < self.quantile < 1.0:
                raise BuiltinParameterError(
                    f"parameter threshold_quantile must be strictly between 0 and 1, got {self.quantile}",
                    parameter="threshold_quantile",
                )
        self.n_components = None if n_components is None else as_int("n_components", n_components, minimum=1)
        self.max_n = checked_max_n(max_n, 3)
        self.seed = seed  # accepted for a uniform constructor; the detector draws nothing
        self._factors: dict[int, float] = {}  # consistency factor by number of components
        super().__init__(state, "mahalanobis_detector")

    def current_threshold(self, state: Mapping[str, Any]) -> float | None:
        if self.raw_threshold is not None:
            return self.raw_threshold
        p = state.get("n_features")
        if not isinstance(p, int):
            return None  # no row seen: the number of components is not known yet
        k = self._components(p)
        limit = score_quantile(self.quantile, k, self._effective(int(state.get("count", 0))))
        # Too few rows to score yet: the limit the threshold starts from (finite, for the gauge).
        return limit if math.isfinite(limit) else chi2_quantile(self.quantile, k)

    def absorb(self, state: Any, rows: np.ndarray) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
        b, p = rows.shape
        k = self._components(p)
        if 0 < self.max_n <= k + 1:
            raise BuiltinInputError(
                f"MAHALANOBIS_DETECTOR's max_n ({self.max_n}) must exceed the number of components "
                f"scored plus one ({k + 1}) for rows of {p} features"
            )
        if not isinstance(state, dict) or state.get("kind") != KIND or not state.get("n"):
            state = _empty()
        total, count = int(state["n"]), int(state.get("count", 0))
        if total and state["n_features"] != p:
            raise BuiltinInputError(
                f"outlier detector has seen rows of {state['n_features']} features; this request has {p}"
            )
        mean, cov = stored_statistics(state, p) if count else (None, None)
        if count and mean is None:
            state, total, count = _empty(), 0, 0
        if mean is None or cov is None:
            mean, cov = np.zeros(p), np.zeros((p, p))
        scores = np.zeros(b)
        flagged = np.zeros(b, dtype=np.int64)
        for i, x in enumerate(rows):
            weight = self._effective(count)
            found = _distance(x, mean, cov, k) if count > k else None
            if found is not None:
                distance, scored = found
                scores[i] = self._consistency(scored) * distance
                limit = (
                    self.raw_threshold
                    if self.raw_threshold is not None
                    else score_quantile(self.quantile, scored, weight)
                )
                flagged[i] = scores[i] > limit
            if flagged[i]:
                continue  # an outlier does not move the statistics the next rows are judged by
            delta = x - mean
            mean = mean + delta / (weight + 1.0)
            if weight:  # the first row leaves a zero covariance
                cov = ((weight - 1.0) * cov + (weight / (weight + 1.0)) * np.outer(delta, delta)) / weight
            count += 1
        new_state = {
            "kind": KIND,
            "n": total + b,
            "count": count,
            "n_features": p,
            "mean": mean.tolist(),
            "cov": cov.tolist(),
            "nb_outliers": int(state["nb_outliers"]) + int(flagged.sum()),
        }
        return new_state, scores, flagged

    def state_summary(self) -> dict[str, Any]:
        summary = super().state_summary()
        summary["absorbed"] = int((self.handle.get() or {}).get("count", 0))
        return summary

    def _consistency(self, k: int) -> float:
        """The factor that undoes the shrinking of a covariance estimated without the flagged
        tail: rows of a k-variate normal with chi-square distance below t have covariance
        Sigma * P(chi2_{k+2} <= t) / P(chi2_k <= t), so distances against it run high by the
        inverse (13% for k = 1 at quantile 0.98: twice the false alarms asked for)."""
        factor = self._factors.get(k)
        if factor is None:
            limit = self.raw_threshold if self.raw_threshold is not None else chi2_quantile(self.quantile, k)
            kept = gamma_cdf(limit / 2.0, k / 2.0)
            factor = self._factors[k] = gamma_cdf(limit / 2.0, k / 2.0 + 1.0) / kept if kept > 0.0 else 1.0
        return factor

    def _components(self, p: int) -> int:
        return p if self.n_components is None else min(self.n_components, p)

    def _effective(self, count: int) -> int:
        return count if self.max_n <= 0 else min(count, self.max_n)


def _distance(x: np.ndarray, mean: np.ndarray, cov: np.ndarray, k: int) -> tuple[float, int] | None:
    """(squared Mahalanobis distance of x over the top k principal components of the
    standardized features, how many components that is), or None while the covariance cannot
    be inverted.

    Standardizing first (the correlation matrix) keeps features of very different units (areas
    in thousands beside ratios in hundredths) from making the covariance look singular, and lets
    no feature's units decide the components; over all features the distance is the same.  A
    feature that has not varied yet is left out.
    """
    spread = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    live = spread > _RELATIVE_TOLERANCE * float(spread.max(initial=0.0))
    if not live.any():
        return None
    spread = spread[live]
    correlation = cov[np.ix_(live, live)] / np.outer(spread, spread)
    values, vectors = np.linalg.eigh(correlation)
    scored = min(k, int(live.sum()))
    top = values[values.size - scored :]
    if top[-1] <= 0.0 or top[0] <= _RELATIVE_TOLERANCE * top[-1]:
        return None
    projected = ((x - mean)[live] / spread) @ vectors[:, values.size - scored :]
    return float(np.sum(projected * projected / top)), scored


def _empty() -> dict[str, Any]:
    return {"kind": KIND, "n": 0, "count": 0, "n_features": None, "mean": None, "cov": None, "nb_outliers": 0}
