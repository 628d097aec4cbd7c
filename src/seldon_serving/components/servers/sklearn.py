"""SKLEARN_SERVER: a scikit-learn model saved with joblib (`model.joblib`) or pickle
(`model.pkl`), as Seldon 1.x's sklearnserver serves it.

Parameters (Seldon's): `model_uri`, and `method`: `predict_proba` (the default),
`predict` or `decision_function`.  The answer is exactly what that method returns.  Unlike
Seldon's server, whose answers are named t:0, t:1, ..., the columns of predict_proba and
decision_function are named after the model's classes (`classes_`, as strings).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar

from ._base import ModelServerBase, ModelServerError

__all__ = ["SKLearnServer"]


class SKLearnServer(ModelServerBase):
    """Serves a saved scikit-learn estimator (or pipeline) through one of its methods."""

    implementation: ClassVar[str] = "SKLEARN_SERVER"
    framework: ClassVar[str] = "sklearn"
    extra: ClassVar[str] = "sklearn"
    model_files: ClassVar[tuple[str, ...]] = ("model.joblib", "model.pkl")
    methods: ClassVar[tuple[str, ...]] = ("predict_proba", "predict", "decision_function")

    def __init__(self, model_uri: str | None = None, method: str = "predict_proba") -> None:
        super().__init__(model_uri, method)
        self.class_names: list[str] | None = None
        self._predict: Any = None

    def _load(self, path: Path) -> None:
        self.import_framework()
        joblib = self.import_framework("joblib")
        file = self.model_file(path)
        try:
            if file.suffix == ".pkl":
                with file.open("rb") as stream:
                    model = pickle.load(stream)
            else:
                model = joblib.load(file)  # joblib also reads plain pickles
        except Exception as exc:  # a model file can fail to unpickle any way
            raise self.unreadable(file, "scikit-learn model saved with joblib or pickle", exc) from None
        predict = getattr(model, self.method, None)
        if not callable(predict):
            offered = [m for m in self.methods if callable(getattr(model, m, None))]
            if not offered:
                raise ModelServerError(
                    f"{file} holds a {type(model).__name__}, not a fitted scikit-learn model (it has no "
                    f"{', '.join(self.methods)})"
                )
            raise ModelServerError(
                f"{file} holds a {type(model).__name__}, which has no {self.method}(): set the "
                f"parameter method to {' or '.join(offered)}"
            )
        self.model = model
        self._predict = predict
        self.class_names = self._class_names(model)

    def _class_names(self, model: Any) -> list[str] | None:
        """The model's classes (as strings) for the columns of predict_proba / decision_function."""
        if self.method == "predict":
            return None
        classes = getattr(model, "classes_", None)
        if classes is None or getattr(classes, "ndim", 1) != 1:
            return None  # a regressor, or a multi-output model (a list of class arrays)
        try:
            return [str(c) for c in classes]
        except TypeError:
            return None

    def _answer(self, X: Any, features_names: list[str] | None) -> Any:
        """The chosen method's answer (float64 where scikit-learn gives float64)."""
        return self._predict(X)
