"""Online Mahalanobis outlier detectors behind Seldon's image names, scoring exactly as Seldon's
own code does (SPEC 8):

- `OutlierMahalanobis`: `seldonio/outlier_mahalanobis` (the seed's `:0.3`, and any tag but 0.1/0.2);
- `OutlierMahalanobis02`: `seldonio/outlier_mahalanobis:0.2` (and `:0.1`): a one-row request's
  covariance divides by n instead of n+1;
- `CoreMahalanobis`: the later `seldonio/outlier-mahalanobis-transformer` / `-model` images (the
  same maths plus clipping after `start_clip` rows).

As a TRANSFORMER a detector passes the data through unchanged and tags the answer with one value
per row: `outlierScore` (what the 0.2/0.3 images emit) and `outlier-predictions` (0/1 by
`threshold`, what Seldon's later detector emits).  As a MODEL its data is the 0/1 predictions.
The running statistics live in a `StateHandle`, updated atomically per request, so every worker
(and a restarted one) scores against, and adds to, the same statistics.

The improved detector, `MAHALANOBIS_DETECTOR`, is `mahalanobis_detector.MahalanobisDetector`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from seldon_serving.components.response import ComponentResponse
from seldon_serving.state.base import StateHandle

from . import _online_mahalanobis as seldon
from ._support import (
    BuiltinInputError,
    BuiltinParameterError,
    as_float,
    as_int,
    local_handle,
    numeric_2d,
)

# The largest |value| absorbed: squared deviations summed over many rows and features
# stay far from float64's 1.8e308.
MAX_MAGNITUDE = 1e100


class OnlineDetector:
    """What every online detector shares: input checks, the atomic state update with
    de-duplication of a re-delivered request, and the answer (tags and gauges)."""

    handle: StateHandle

    def __init__(self, state: StateHandle | None, key: str) -> None:
        self.handle = state if state is not None else local_handle(key)
        # For inspection only (standalone use, tests).  Deliberately not exposed as
        # tags()/metrics(): the adapter calls those on EVERY answer of this node and
        # appends their metrics to the per-request ones, so they would duplicate the
        # gauges and could carry another (concurrent) request's values.
        self._last_tags: dict[str, Any] = {}
        self._last_metrics: list[dict[str, Any]] = []

    # --- what a detector defines -------------------------------------------------------

    def absorb(self, state: Any, rows: np.ndarray) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
        """(state after `rows`, their scores, their 0/1 predictions).  Pure in `state`."""
        raise NotImplementedError

    def current_threshold(self, state: Mapping[str, Any]) -> float | None:
        """The score above which a row is an outlier now (the `threshold` gauge), if known."""
        raise NotImplementedError

    # --- the component's methods -------------------------------------------------------

    def transform_input(
        self, X: Any, features_names: Any = None, meta: Mapping[str, Any] | None = None
    ) -> ComponentResponse:
        """X unchanged, tagged with this request's scores and 0/1 predictions."""
        scores, predictions, state = self._observe(X, meta)
        return self._answer(X, scores, predictions, state)

    def predict(
        self, X: Any, features_names: Any = None, meta: Mapping[str, Any] | None = None
    ) -> ComponentResponse:
        """The 0/1 prediction of every row (the detector used as a MODEL)."""
        scores, predictions, state = self._observe(X, meta)
        return self._answer(predictions, scores, predictions, state)

    def score(self, X: Any, features_names: Any = None) -> np.ndarray:
        """The 0.2.x OUTLIER_DETECTOR contract: one score per row (and the same update)."""
        return self._observe(X, None)[0]

    def last_tags(self) -> dict[str, Any]:
        """The tags of the most recent request this instance served."""
        return dict(self._last_tags)

    def last_metrics(self) -> list[dict[str, Any]]:
        """The metrics of the most recent request this instance served."""
        return list(self._last_metrics)

    def state_summary(self) -> dict[str, Any]:
        state = self.handle.get() or {}
        return {
            "observations": int(state.get("n", 0)),
            "nb_outliers": int(state.get("nb_outliers", 0)),
            "n_features": state.get("n_features"),
            "threshold": self.current_threshold(state),
        }

    # --- internals ---------------------------------------------------------------------

    def _observe(
        self, X: Any, meta: Mapping[str, Any] | None
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        rows = numeric_2d("outlier_mahalanobis", X)
        if rows.shape[1] == 0:
            raise BuiltinInputError("outlier_mahalanobis needs at least one feature per row")
        if not np.isfinite(rows).all():
            # One NaN would poison the shared mean and covariance for good.
            raise BuiltinInputError("outlier_mahalanobis needs finite numbers (no NaN or infinity)")
        if rows.size and float(np.abs(rows).max()) > MAX_MAGNITUDE:
            # Finite but huge values overflow the covariance (squares of deviations) to
            # infinity, and the shared state would be unusable for every later request.
            raise BuiltinInputError(
                f"outlier_mahalanobis takes values up to {MAX_MAGNITUDE:g} in magnitude "
                f"(got {float(np.abs(rows).max()):g}): larger ones overflow its covariance"
            )
        if rows.shape[0] == 0:
            return np.zeros(0), np.zeros(0, dtype=np.int64), self.handle.get() or {}

        computed: dict[str, tuple[np.ndarray, np.ndarray]] = {}

        def update(current: Any) -> Any:
            # Pure in `current`; if a store re-runs it, the committed (last) run's
            # scores are the ones kept.
            new_state, scores, predictions = self.absorb(current, rows)
            computed["result"] = (scores, predictions)
            return new_state

        state = self.handle.update(update, once=_request_token(meta, rows))
        if "result" not in computed:
            # The same request was already absorbed (an engine retry): score it
            # against the current state without counting it again.
            _, scores, predictions = self.absorb(state, rows)
        else:
            scores, predictions = computed["result"]
        return scores, predictions, state

    def _answer(
        self, data: Any, scores: np.ndarray, predictions: np.ndarray, state: dict[str, Any]
    ) -> ComponentResponse:
        tags = {"outlierScore": scores.tolist(), "outlier-predictions": predictions.tolist()}
        observed = int(state.get("n", 0))
        nb_outliers = int(state.get("nb_outliers", 0))
        gauges = {
            "is_outlier": float(predictions.mean()) if predictions.size else 0.0,
            "outlier_score": float(scores.mean()) if scores.size else 0.0,
            "nb_outliers": nb_outliers,
            "fraction_outliers": nb_outliers / observed if observed else 0.0,
            "observation": observed,
            "threshold": self.current_threshold(state) or 0.0,  # known once a row was seen
        }
        metrics = [{"type": "GAUGE", "key": key, "value": value} for key, value in gauges.items()]
        self._last_tags, self._last_metrics = tags, metrics
        return ComponentResponse(data, tags=tags, metrics=metrics)


def checked_max_n(value: Any, low: int) -> int:
    """max_n: <= 0 for unbounded, else at least `low` rows of memory."""
    max_n = as_int("max_n", value)
    if 0 < max_n < low:
        # The update weighs the past by max_n - 1 (and Seldon's inverse by max_n - 2).
        raise BuiltinParameterError(
            f"parameter max_n must be >= {low} (or <= 0 for unbounded), got {max_n}", parameter="max_n"
        )
    return max_n


class OutlierMahalanobis(OnlineDetector):
    """TRANSFORMER or MODEL behind `seldonio/outlier_mahalanobis:0.3`: Seldon's scores."""

    variant: seldon.Variant = "0.3"

    def __init__(
        self,
        threshold: float = 25.0,
        n_components: int = 3,
        max_n: int | None = -1,
        seed: int | None = None,
        n_stdev: float | None = None,
        start_clip: int | None = None,
        *,
        state: StateHandle | None = None,
    ) -> None:
        for name, value in (("n_stdev", n_stdev), ("start_clip", start_clip)):
            if value is not None:
                raise BuiltinParameterError(
                    f"parameter {name} is not one of seldonio/outlier_mahalanobis (it never clips): "
                    "the later image seldonio/outlier-mahalanobis-transformer takes it",
                    parameter=name,
                )
        self.params = seldon.SeldonParams(
            variant=self.variant,
            threshold=as_float("threshold", threshold),
            n_components=as_int("n_components", n_components, minimum=1),
            max_n=-1 if max_n is None else checked_max_n(max_n, 2),  # Seldon's default is None
        )
        self.seed = seed  # accepted for a uniform constructor; the detector draws nothing
        super().__init__(state, "outlier_mahalanobis")

    def absorb(self, state: Any, rows: np.ndarray) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
        new_state, scores = seldon.observe(state, rows, self.params)
        return new_state, scores, (scores > self.params.threshold).astype(np.int64)

    def current_threshold(self, state: Mapping[str, Any]) -> float:
        return self.params.threshold


class OutlierMahalanobis02(OutlierMahalanobis):
    """`seldonio/outlier_mahalanobis:0.2`: a one-row request's covariance divides by n."""

    variant: seldon.Variant = "0.2"


class CoreMahalanobis(OnlineDetector):
    """TRANSFORMER or MODEL behind Seldon's later `outlier-mahalanobis-transformer` / `-model`
    images: the 0.3 maths plus clipping to mean +- n_stdev stdev after `start_clip` rows."""

    def __init__(
        self,
        threshold: float = 25.0,
        n_components: int = 3,
        n_stdev: float = 3.0,
        start_clip: int = 50,
        max_n: int = -1,
        seed: int | None = None,
        *,
        state: StateHandle | None = None,
    ) -> None:
        self.params = seldon.SeldonParams(
            variant="core",
            threshold=as_float("threshold", threshold),
            n_components=as_int("n_components", n_components, minimum=1),
            n_stdev=as_float("n_stdev", n_stdev, low=0.0),
            start_clip=as_int("start_clip", start_clip, minimum=0),
            max_n=checked_max_n(max_n, 2),
        )
        self.seed = seed
        super().__init__(state, "outlier_mahalanobis")

    def absorb(self, state: Any, rows: np.ndarray) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
        new_state, scores = seldon.observe(state, rows, self.params)
        return new_state, scores, (scores > self.params.threshold).astype(np.int64)

    def current_threshold(self, state: Mapping[str, Any]) -> float:
        return self.params.threshold


def _request_token(meta: Mapping[str, Any] | None, rows: np.ndarray) -> str | None:
    """Once-token of a request: its puid plus a digest of its rows.

    The puid alone would silently drop the rows of a client that reuses one puid for
    different requests; with the digest only a true re-delivery is skipped.
    """
    puid = meta.get("puid") if isinstance(meta, Mapping) else None
    if not puid:
        return None
    digest = hashlib.blake2b(np.ascontiguousarray(rows).tobytes(), digest_size=8).hexdigest()
    return f"{puid}:{rows.shape[1]}:{digest}"
