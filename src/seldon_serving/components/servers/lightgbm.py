"""LIGHTGBM_SERVER: a LightGBM Booster saved with `save_model` (`model.txt`; `model.bst`,
MLServer's name for the same text file, is read too).

Parameters: `model_uri`, and `method`: `predict` only: the answer is `booster.predict(X)`,
e.g. class probabilities (float64) for a multiclass objective.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ._base import ModelServerBase, ModelServerError

__all__ = ["LightGBMServer"]


class LightGBMServer(ModelServerBase):
    """Serves a saved LightGBM Booster."""

    implementation: ClassVar[str] = "LIGHTGBM_SERVER"
    framework: ClassVar[str] = "lightgbm"
    extra: ClassVar[str] = "lightgbm"
    model_files: ClassVar[tuple[str, ...]] = ("model.txt", "model.bst")

    def __init__(self, model_uri: str | None = None, method: str = "predict") -> None:
        super().__init__(model_uri, method)
        self._booster: Any = None

    def _load(self, path: Path) -> None:
        lgb = self.import_framework()
        file = self.model_file(path)
        what = "model saved by LightGBM's save_model"
        try:
            text = file.read_bytes()
        except OSError as exc:
            raise self.unreadable(file, what, exc) from None
        # LightGBM's parser trusts the file: a truncated one crashes the process (SIGSEGV)
        # instead of raising, so its shape is checked first.
        if not text.startswith(b"tree"):
            raise ModelServerError(f"{file} is not a {what} (it does not start with 'tree')")
        if b"end of trees" not in text:
            raise ModelServerError(f"{file} is truncated: it has no 'end of trees' line")
        try:
            booster = lgb.Booster(model_str=text.decode())
        except Exception as exc:  # LightGBMError, UnicodeDecodeError
            raise self.unreadable(file, what, exc) from None
        self._booster = booster
        self.input_errors = (*self.input_errors, lgb.basic.LightGBMError)

    def _answer(self, X: Any, features_names: list[str] | None) -> Any:
        """`booster.predict(X)`."""
        return self._booster.predict(X)
