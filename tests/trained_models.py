"""Trained models saved the way a user saves them, for the model servers (issue 12).

Each `save_*` function trains a small model (a second or less), writes it into `directory`
under the file name its server looks for, and returns a `TrainedModel`: the directory (the
`modelUri`), the fitted framework object, held-out input rows and their labels, and
`framework_answer(rows)` — what the framework itself predicts for those rows, which a server
must answer exactly (to 1e-9).

    trained = save_sklearn_logistic(tmp_path / "lr")
    trained.framework_answer(trained.rows)                    # model.predict_proba(rows)
    trained.framework_answer(trained.rows, method="predict")  # model.predict(rows)

Data: `load_iris` (default, 4 features, 3 classes) or `load_digits` (64 features, 10 classes),
both shipped with scikit-learn (no download).

`serve_model("sklearn", trained.directory)` runs `seldon microservice --server sklearn
--model-uri DIR` on free loopback ports (a `tests.helpers.Server`, stopped at exit).
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tests import helpers

Dataset = Literal["iris", "digits"]
# The framework's own prediction for some rows, by server `method` (None: the server's default).
Answer = Callable[[np.ndarray, str | None], np.ndarray]

IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_CLASSES = ["setosa", "versicolor", "virginica"]


@dataclass(frozen=True)
class Split:
    """A deterministic train / held-out split of a scikit-learn toy data set."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    feature_names: list[str]
    class_names: list[str]

    def trained(self, framework: str, directory: Path, model: Any, answer: Answer) -> TrainedModel:
        """A model trained on this split, with its held-out rows to ask it about."""
        held_out = (self.x_test, self.y_test, self.feature_names, self.class_names)
        return TrainedModel(framework, directory, model, *held_out, answer)


def split(dataset: Dataset = "iris", test_size: float = 0.25, seed: int = 0) -> Split:
    """The data set's rows (float64) split into train and held-out parts, stratified."""
    from sklearn.datasets import load_digits, load_iris
    from sklearn.model_selection import train_test_split

    data = load_iris() if dataset == "iris" else load_digits()
    x = np.asarray(data.data, dtype=np.float64)
    y = np.asarray(data.target)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y
    )
    features = IRIS_FEATURES if dataset == "iris" else [f"pixel_{i}" for i in range(x.shape[1])]
    classes = IRIS_CLASSES if dataset == "iris" else [str(c) for c in data.target_names]
    return Split(x_train, y_train, x_test, y_test, features, classes)


@dataclass(frozen=True)
class TrainedModel:
    """A model saved in `directory` (pass it as the modelUri) and what its framework answers."""

    kind: str  # sklearn, xgboost, lightgbm, mlflow
    directory: Path
    model: Any  # the fitted object: sklearn estimator, xgboost.Booster, lightgbm.Booster, pyfunc model
    rows: np.ndarray  # held-out rows, float64, 2-D
    labels: np.ndarray  # their true classes
    feature_names: list[str]
    class_names: list[str]  # the data set's class names (not what a server reports)
    _answer: Answer = field(repr=False)

    @property
    def file(self) -> Path:
        """The model file (or, for MLflow, the MLmodel file) in the directory."""
        names = ["MLmodel", "model.joblib", "model.pkl", "model.bst", "model.json", "model.ubj", "model.txt"]
        for name in names:
            if (self.directory / name).exists():
                return self.directory / name
        raise FileNotFoundError(f"no model file in {self.directory}")

    def framework_answer(self, rows: np.ndarray | None = None, method: str | None = None) -> np.ndarray:
        """What the framework predicts for `rows` (default: the held-out rows), as an array."""
        return np.asarray(self._answer(self.rows if rows is None else rows, method))

    def accuracy(self) -> float:
        """The share of held-out rows whose most likely class is the true one."""
        answer = self.framework_answer(self.rows)
        predicted = answer.argmax(axis=1) if answer.ndim == 2 else answer
        return float(np.mean(predicted == self.labels))


def _sklearn_answer(model: Any) -> Answer:
    def answer(rows: np.ndarray, method: str | None) -> np.ndarray:
        return np.asarray(getattr(model, method or "predict_proba")(rows))

    return answer


def _save_sklearn(model: Any, directory: Path, filename: str) -> None:
    import joblib

    directory.mkdir(parents=True, exist_ok=True)
    if filename.endswith(".pkl"):
        import pickle

        with (directory / filename).open("wb") as out:
            pickle.dump(model, out)
    else:
        joblib.dump(model, directory / filename)


def save_sklearn_logistic(
    directory: Path, *, dataset: Dataset = "iris", filename: str = "model.joblib", max_iter: int = 1000
) -> TrainedModel:
    """A scikit-learn LogisticRegression in `directory/filename` (model.joblib or model.pkl)."""
    from sklearn.linear_model import LogisticRegression

    data = split(dataset)
    model = LogisticRegression(max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a deliberately weak model (small max_iter) may not converge
        model.fit(data.x_train, data.y_train)
    _save_sklearn(model, directory, filename)
    return data.trained("sklearn", directory, model, _sklearn_answer(model))


def save_sklearn_forest(
    directory: Path,
    *,
    dataset: Dataset = "iris",
    filename: str = "model.joblib",
    n_estimators: int = 20,
    max_depth: int | None = None,
) -> TrainedModel:
    """A scikit-learn RandomForestClassifier in `directory/filename` (no decision_function)."""
    from sklearn.ensemble import RandomForestClassifier

    data = split(dataset)
    model = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth, random_state=0)
    model.fit(data.x_train, data.y_train)
    _save_sklearn(model, directory, filename)
    return data.trained("sklearn", directory, model, _sklearn_answer(model))


def save_sklearn_regressor(directory: Path, *, filename: str = "model.joblib") -> TrainedModel:
    """A scikit-learn LinearRegression (no predict_proba, no classes_) on iris' first three
    features predicting the fourth; its answer is `predict`."""
    from sklearn.linear_model import LinearRegression

    data = split("iris")
    model = LinearRegression().fit(data.x_train[:, :3], data.x_train[:, 3])
    _save_sklearn(model, directory, filename)
    return TrainedModel(
        "sklearn",
        directory,
        model,
        data.x_test[:, :3],
        data.x_test[:, 3],
        data.feature_names[:3],
        [],
        lambda rows, method: np.asarray(getattr(model, method or "predict")(rows)),
    )


def save_xgboost(
    directory: Path, *, dataset: Dataset = "iris", filename: str = "model.bst", rounds: int = 10
) -> TrainedModel:
    """An xgboost Booster (multi:softprob) in `directory/filename` (model.bst, .json or .ubj);
    its answer is `booster.predict(DMatrix(rows))`, class probabilities, float32."""
    import xgboost as xgb

    data = split(dataset)
    params = {
        "objective": "multi:softprob",
        "num_class": len(data.class_names),
        "max_depth": 3,
        "eta": 0.3,
        "seed": 0,
        "nthread": 1,
    }
    booster = xgb.train(params, xgb.DMatrix(data.x_train, label=data.y_train), num_boost_round=rounds)
    directory.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # model.bst: xgboost says it writes UBJSON, which it reads back
        booster.save_model(str(directory / filename))

    def answer(rows: np.ndarray, method: str | None) -> np.ndarray:
        return np.asarray(booster.predict(xgb.DMatrix(rows)))

    return data.trained("xgboost", directory, booster, answer)


def save_lightgbm(
    directory: Path, *, dataset: Dataset = "iris", filename: str = "model.txt", rounds: int = 10
) -> TrainedModel:
    """A LightGBM Booster (multiclass) in `directory/model.txt`; its answer is
    `booster.predict(rows)`, class probabilities, float64."""
    import lightgbm as lgb

    data = split(dataset)
    params = {
        "objective": "multiclass",
        "num_class": len(data.class_names),
        "num_leaves": 7,
        "min_data_in_leaf": 5,
        "verbose": -1,
        "seed": 0,
        "num_threads": 1,
    }
    booster = lgb.train(params, lgb.Dataset(data.x_train, label=data.y_train), num_boost_round=rounds)
    directory.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(directory / filename))

    def answer(rows: np.ndarray, method: str | None) -> np.ndarray:
        return np.asarray(booster.predict(rows))

    return data.trained("lightgbm", directory, booster, answer)


def _pyfunc_answer(directory: Path, as_frame: list[str] | None) -> Answer:
    def answer(rows: np.ndarray, method: str | None) -> np.ndarray:
        import mlflow.pyfunc
        import pandas as pd

        loaded = mlflow.pyfunc.load_model(str(directory))
        result = loaded.predict(pd.DataFrame(rows, columns=as_frame) if as_frame else rows)
        return result.to_numpy() if isinstance(result, pd.DataFrame) else np.asarray(result)

    return answer


def save_mlflow_sklearn(directory: Path, *, dataset: Dataset = "iris") -> TrainedModel:
    """A LogisticRegression saved with `mlflow.sklearn.save_model` (pyfunc flavour) and a tensor
    signature (float64 [-1, n_features] in, int64 [-1] out); `directory` must not exist yet.
    Its answer is the pyfunc's `predict` (class labels)."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    data = split(dataset)
    model = LogisticRegression(max_iter=1000).fit(data.x_train, data.y_train)
    signature = infer_signature(data.x_train, model.predict(data.x_train))
    mlflow.sklearn.save_model(
        model,
        str(directory),
        signature=signature,
        serialization_format="cloudpickle",  # skops is not installed by the mlflow extra
        pip_requirements=["scikit-learn"],  # inferring them runs the model in a subprocess (seconds)
    )
    return data.trained("mlflow", directory, model, _pyfunc_answer(directory, None))


def save_mlflow_pyfunc(directory: Path) -> TrainedModel:
    """An `mlflow.pyfunc.PythonModel` (written as a models-from-code file, so loading needs no
    test module) wrapping an iris LogisticRegression: a column signature (the four iris
    features, float64, in; one float64 column per class name, out) and a DataFrame answer
    with those columns (predict_proba).  `directory` must not exist yet."""
    import joblib
    import mlflow.pyfunc
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    data = split("iris")
    model = LogisticRegression(max_iter=1000).fit(data.x_train, data.y_train)
    staging = directory.with_name(directory.name + "-staging")
    staging.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, staging / "lr.joblib")
    code = staging / "iris_probabilities.py"
    code.write_text(_PYFUNC_CODE)
    frame = pd.DataFrame(data.x_train, columns=data.feature_names)
    output = pd.DataFrame(model.predict_proba(data.x_train), columns=data.class_names)
    mlflow.pyfunc.save_model(
        str(directory),
        python_model=str(code),
        artifacts={"model": str(staging / "lr.joblib")},
        signature=infer_signature(frame, output),
        pip_requirements=["scikit-learn", "pandas"],  # inferring them takes seconds
    )
    shutil.rmtree(staging)  # save_model copied the code and the artifact into the model directory
    return data.trained("mlflow", directory, model, _pyfunc_answer(directory, data.feature_names))


_PYFUNC_CODE = f'''"""Iris class probabilities as a DataFrame, one column per class (MLflow model code)."""

import joblib
import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model

CLASSES = {IRIS_CLASSES!r}


class IrisProbabilities(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.model = joblib.load(context.artifacts["model"])

    def predict(self, context, model_input, params=None):
        rows = model_input.to_numpy() if hasattr(model_input, "to_numpy") else model_input
        return pd.DataFrame(self.model.predict_proba(rows), columns=CLASSES)


set_model(IrisProbabilities())
'''


def serve_model(
    server: str, model_uri: str | Path, *args: str, **options: Any
) -> AbstractContextManager[helpers.Server]:
    """`seldon microservice --server SERVER --model-uri URI ARGS...` on free loopback ports,
    stopped at exit; `options` as `tests.helpers.microservice` takes them (workers, env, ...)."""
    # The class argument's place holds the --server option: click takes options anywhere.
    return helpers.microservice(f"--server={server}", "--model-uri", str(model_uri), *args, **options)
