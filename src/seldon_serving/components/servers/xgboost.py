"""XGBOOST_SERVER: an xgboost Booster saved with `save_model` (`model.bst`, Seldon's name,
or `model.json` / `model.ubj`), as Seldon 1.x's xgboostserver serves it.

Parameters: `model_uri`, and `method`: `predict` only (Seldon's server has none): the answer
is `booster.predict(DMatrix(X))`, e.g. class probabilities for `multi:softprob` (xgboost's
float32 values, widened exactly to float64 so that JSON carries them unchanged).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar

from ._base import ModelServerBase

__all__ = ["XGBoostServer"]


class XGBoostServer(ModelServerBase):
    """Serves a saved xgboost Booster."""

    implementation: ClassVar[str] = "XGBOOST_SERVER"
    framework: ClassVar[str] = "xgboost"
    extra: ClassVar[str] = "xgboost"
    model_files: ClassVar[tuple[str, ...]] = ("model.bst", "model.json", "model.ubj")

    def __init__(self, model_uri: str | None = None, method: str = "predict") -> None:
        super().__init__(model_uri, method)
        self._xgb: Any = None
        self._booster: Any = None

    def _load(self, path: Path) -> None:
        xgb = self.import_framework()
        file = self.model_file(path)
        try:
            with warnings.catch_warnings():
                # model.bst: xgboost warns that it guesses the format from the content; it is right.
                warnings.simplefilter("ignore")
                booster = xgb.Booster(model_file=str(file))
        except Exception as exc:  # XGBoostError, or anything a corrupt file provokes
            raise self.unreadable(file, "model saved by xgboost's save_model", exc) from None
        self._xgb = xgb
        self._booster = booster
        self.input_errors = (*self.input_errors, xgb.core.XGBoostError)

    def _answer(self, X: Any, features_names: list[str] | None) -> Any:
        """`booster.predict(DMatrix(X))`, as Seldon's server answers."""
        return self._booster.predict(self._xgb.DMatrix(X))
