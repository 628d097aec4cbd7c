"""A model a server cannot serve is refused when it loads, in one sentence naming the file (or
the parameter) at fault; a request the model cannot take is the caller's error (400)."""

from __future__ import annotations

import pickle
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seldon_serving.components.loader import ComponentLoadError
from seldon_serving.components.servers.lightgbm import LightGBMServer
from seldon_serving.components.servers.mlflow import MLFlowServer
from seldon_serving.components.servers.registry import ModelServerError, ServerParameterError
from seldon_serving.components.servers.sklearn import SKLearnServer
from seldon_serving.components.servers.xgboost import XGBoostServer
from seldon_serving.protocol.errors import SeldonError
from tests.components.servers._serving import adapter_for, ask, body
from tests.trained_models import TrainedModel

# fixture of a good model, its server, the file to spoil in a copy of its directory
SERVERS = {
    "sklearn": ("logistic", SKLearnServer, "model.joblib"),
    "sklearn-pickle": ("forest", SKLearnServer, "model.pkl"),
    "xgboost": ("booster", XGBoostServer, "model.bst"),
    "lightgbm": ("lightgbm_model", LightGBMServer, "model.txt"),
    "mlflow": ("mlflow_sklearn", MLFlowServer, "MLmodel"),
}


def load_error(server: Any) -> str:
    """The one sentence loading `server` fails with (as the microservice and the gateway load it)."""
    with pytest.raises(ComponentLoadError) as caught:
        adapter_for(server)
    assert isinstance(caught.value, ModelServerError)  # not wrapped as "<class>.load() failed: ..."
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message and len(message) < 400, message
    return message


def spoiled(trained: TrainedModel, file: str, tmp_path: Path, spoil: Callable[[bytes], bytes]) -> Path:
    """A copy of the model's directory whose `file` holds `spoil(its bytes)`."""
    copy = tmp_path / "model"
    shutil.copytree(trained.directory, copy)
    (copy / file).write_bytes(spoil((copy / file).read_bytes()))
    return copy


@pytest.mark.parametrize("name", list(SERVERS))
def test_a_missing_path_is_named(name: str, tmp_path: Path) -> None:
    _, server_class, _ = SERVERS[name]
    missing = tmp_path / "no-such-model"
    message = load_error(server_class(str(missing)))
    assert str(missing) in message and "does not exist" in message


@pytest.mark.parametrize("name", list(SERVERS))
def test_a_file_of_another_format_is_named(request: pytest.FixtureRequest, name: str, tmp_path: Path) -> None:
    fixture, server_class, file = SERVERS[name]
    directory = spoiled(
        request.getfixturevalue(fixture), file, tmp_path, lambda _: b"<html>not a model</html>"
    )
    message = load_error(server_class(str(directory)))
    assert str(directory / file) in message
    assert "is not a" in message


@pytest.mark.parametrize("name", list(SERVERS))
def test_a_truncated_file_is_named(request: pytest.FixtureRequest, name: str, tmp_path: Path) -> None:
    fixture, server_class, file = SERVERS[name]
    trained: TrainedModel = request.getfixturevalue(fixture)
    if name == "mlflow":  # its MLmodel file is a few lines of YAML: truncate the model it points at
        directory = spoiled(trained, "model.pkl", tmp_path, lambda data: data[: len(data) // 2])
    else:
        directory = spoiled(trained, file, tmp_path, lambda data: data[: len(data) // 2])
    message = load_error(server_class(str(directory)))
    assert str(directory / file) in message
    assert "truncated" in message


@pytest.mark.parametrize(
    ("server_class", "files"),
    [
        (SKLearnServer, "model.joblib or model.pkl"),
        (XGBoostServer, "model.bst or model.json or model.ubj"),
        (LightGBMServer, "model.txt or model.bst"),
        (MLFlowServer, "MLmodel"),
    ],
)
def test_a_directory_without_the_model_file_says_which_file_it_wants(
    server_class: type, files: str, tmp_path: Path
) -> None:
    (tmp_path / "README.md").write_text("the model is elsewhere")
    message = load_error(server_class(str(tmp_path)))
    assert f"{tmp_path} has no {files}" in message and "README.md" in message


def test_another_servers_model_is_refused_naming_what_the_directory_holds(logistic: TrainedModel) -> None:
    message = load_error(XGBoostServer(str(logistic.directory)))
    assert "has no model.bst" in message and "model.joblib" in message


def test_an_mlflow_uri_must_be_a_directory(logistic: TrainedModel) -> None:
    message = load_error(MLFlowServer(str(logistic.directory / "model.joblib")))
    assert "MLmodel" in message and "model.joblib is a file" in message


def test_an_unknown_method_is_refused_when_the_server_is_built(logistic: TrainedModel) -> None:
    with pytest.raises(ServerParameterError, match="method 'transform' is not one of predict_proba, predict"):
        SKLearnServer(str(logistic.directory), method="transform")
    with pytest.raises(ServerParameterError, match="method 'predict_proba' is not one of predict"):
        XGBoostServer(str(logistic.directory), method="predict_proba")
    with pytest.raises(ServerParameterError, match="xtype 'json' is not one of ndarray, dataframe"):
        MLFlowServer(str(logistic.directory), xtype="json")


def test_model_uri_is_required() -> None:
    with pytest.raises(ServerParameterError, match="SKLEARN_SERVER needs the parameter model_uri"):
        SKLearnServer()


def test_a_model_without_the_method_says_which_methods_it_has(regressor: TrainedModel) -> None:
    message = load_error(SKLearnServer(str(regressor.directory)))  # default method: predict_proba
    assert "holds a LinearRegression, which has no predict_proba()" in message
    assert "set the parameter method to predict" in message


def test_a_pickle_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    with (tmp_path / "model.pkl").open("wb") as out:
        pickle.dump({"weights": [1, 2, 3]}, out)
    message = load_error(SKLearnServer(str(tmp_path), method="predict"))
    assert "holds a dict, not a fitted scikit-learn model" in message


def test_a_pickle_needing_a_module_that_is_not_installed_names_it(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "h1_custom_estimator.py").write_text(
        "class Estimator:\n    def predict(self, X):\n        return X\n"
    )
    sys.path.insert(0, str(code))
    try:
        import h1_custom_estimator  # type: ignore[import-not-found]

        with (tmp_path / "model.pkl").open("wb") as out:
            pickle.dump(h1_custom_estimator.Estimator(), out)
    finally:
        sys.path.remove(str(code))
        sys.modules.pop("h1_custom_estimator", None)
    message = load_error(SKLearnServer(str(tmp_path), method="predict"))
    assert "needs the Python module 'h1_custom_estimator'" in message


def test_a_missing_framework_names_the_pip_command(logistic: TrainedModel) -> None:
    class WithoutFramework(SKLearnServer):
        framework = "h1_no_such_framework"

    message = load_error(WithoutFramework(str(logistic.directory)))
    assert "SKLEARN_SERVER needs h1_no_such_framework" in message
    assert "pip install 'seldon-serving[sklearn]'" in message


@pytest.mark.parametrize("name", list(SERVERS))
def test_rows_of_the_wrong_width_are_the_callers_error(request: pytest.FixtureRequest, name: str) -> None:
    fixture, server_class, _ = SERVERS[name]
    trained: TrainedModel = request.getfixturevalue(fixture)
    adapter = adapter_for(server_class(str(trained.directory)))
    with pytest.raises(SeldonError) as caught:
        ask(adapter, body(np.ones((2, 7))))  # the models take 4 features
    assert caught.value.http_status == 400
    assert server_class.implementation in str(caught.value)


def test_a_bad_request_leaves_the_server_serving(logistic: TrainedModel) -> None:
    adapter = adapter_for(SKLearnServer(str(logistic.directory)))
    with pytest.raises(SeldonError):
        ask(adapter, body(np.ones((1, 2))))
    answer = ask(adapter, body(logistic.rows))
    np.testing.assert_allclose(answer["data"]["ndarray"], logistic.framework_answer(), rtol=0, atol=1e-9)
