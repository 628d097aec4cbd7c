"""Each model server answers exactly what its framework's own predict gives on the same rows
(to 1e-9), for ndarray and tensor requests, with the names a user reads the columns by."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from seldon_serving.components.servers.lightgbm import LightGBMServer
from seldon_serving.components.servers.mlflow import MLFlowServer
from seldon_serving.components.servers.sklearn import SKLearnServer
from seldon_serving.components.servers.xgboost import XGBoostServer
from tests.components.servers._serving import adapter_for, ask, body, values
from tests.trained_models import TrainedModel

# (fixture holding the saved model, server class, its parameters besides model_uri, framework method)
CASES = {
    "sklearn-logistic-default": ("logistic", SKLearnServer, {}, None),
    "sklearn-logistic-predict": ("logistic", SKLearnServer, {"method": "predict"}, "predict"),
    "sklearn-logistic-decision": (
        "logistic",
        SKLearnServer,
        {"method": "decision_function"},
        "decision_function",
    ),
    "sklearn-forest-pickle": ("forest", SKLearnServer, {}, "predict_proba"),
    "sklearn-regressor": ("regressor", SKLearnServer, {"method": "predict"}, "predict"),
    "xgboost": ("booster", XGBoostServer, {}, None),
    "lightgbm": ("lightgbm_model", LightGBMServer, {}, None),
    "mlflow-sklearn": ("mlflow_sklearn", MLFlowServer, {}, None),
    "mlflow-pyfunc": ("mlflow_pyfunc", MLFlowServer, {}, None),
}


@pytest.mark.parametrize("payload", ["ndarray", "tensor"])
@pytest.mark.parametrize("case", list(CASES))
def test_answer_is_what_the_framework_predicts(
    request: pytest.FixtureRequest, case: str, payload: str
) -> None:
    fixture, server_class, parameters, method = CASES[case]
    trained: TrainedModel = request.getfixturevalue(fixture)
    adapter = adapter_for(server_class(model_uri=str(trained.directory), **parameters))

    answer = ask(adapter, body(trained.rows, payload))

    expected = trained.framework_answer(trained.rows, method)
    assert payload in answer["data"]
    got = values(answer)
    assert got.shape == expected.shape and len(got) == len(trained.rows)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


@pytest.fixture
def request_(request: pytest.FixtureRequest) -> pytest.FixtureRequest:
    """pytest's own `request` (the module's `body()` builds Seldon requests)."""
    return request


def test_sklearn_default_method_is_predict_proba_with_the_classes_as_names(logistic: TrainedModel) -> None:
    answer = ask(adapter_for(SKLearnServer(str(logistic.directory))), body(logistic.rows[:3]))
    assert answer["data"]["names"] == ["0", "1", "2"]
    np.testing.assert_allclose(values(answer).sum(axis=1), 1.0)  # probabilities, not labels


def test_sklearn_class_names_are_the_labels_it_was_trained_with(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    from tests.trained_models import split

    data = split("iris")
    labels = np.array(data.class_names)[data.y_train]  # "setosa", ... instead of 0, 1, 2
    model = LogisticRegression(max_iter=1000).fit(data.x_train, labels)
    import joblib

    joblib.dump(model, tmp_path / "model.joblib")
    for method in ("predict_proba", "decision_function"):
        answer = ask(adapter_for(SKLearnServer(str(tmp_path), method=method)), body(data.x_test[:2]))
        assert answer["data"]["names"] == ["setosa", "versicolor", "virginica"]
    labelled = ask(adapter_for(SKLearnServer(str(tmp_path), method="predict")), body(data.x_test[:2]))
    assert labelled["data"]["ndarray"] == model.predict(data.x_test[:2]).tolist()


def test_boosters_have_no_classes_so_columns_keep_seldons_names(
    booster: TrainedModel, lightgbm_model: TrainedModel
) -> None:
    for server in (XGBoostServer(str(booster.directory)), LightGBMServer(str(lightgbm_model.directory))):
        assert ask(adapter_for(server), body(booster.rows[:1]))["data"]["names"] == ["t:0", "t:1", "t:2"]


def test_mlflow_dataframe_answer_names_its_columns(mlflow_pyfunc: TrainedModel) -> None:
    answer = ask(adapter_for(MLFlowServer(str(mlflow_pyfunc.directory))), body(mlflow_pyfunc.rows[:2]))
    assert answer["data"]["names"] == ["setosa", "versicolor", "virginica"]


def test_mlflow_columns_follow_the_request_names_when_they_are_the_signatures(
    mlflow_pyfunc: TrainedModel,
) -> None:
    """Rows sent with their columns in another order, named: the model still gets each feature
    in its own column."""
    order = [3, 1, 0, 2]
    names = [mlflow_pyfunc.feature_names[i] for i in order]
    adapter = adapter_for(MLFlowServer(str(mlflow_pyfunc.directory)))
    answer = ask(adapter, body(mlflow_pyfunc.rows[:, order], names=names))
    np.testing.assert_allclose(values(answer), mlflow_pyfunc.framework_answer(), rtol=0, atol=1e-9)


def test_mlflow_dataframe_xtype_uses_the_request_names(mlflow_pyfunc: TrainedModel) -> None:
    adapter = adapter_for(MLFlowServer(str(mlflow_pyfunc.directory), xtype="dataframe"))
    answer = ask(adapter, body(mlflow_pyfunc.rows, names=mlflow_pyfunc.feature_names))
    np.testing.assert_allclose(values(answer), mlflow_pyfunc.framework_answer(), rtol=0, atol=1e-9)


def test_the_uri_may_be_the_model_file_itself_or_a_file_uri(logistic: TrainedModel) -> None:
    expected = logistic.framework_answer()
    for uri in (str(logistic.directory / "model.joblib"), f"file://{logistic.directory}"):
        got = values(ask(adapter_for(SKLearnServer(uri)), body(logistic.rows)))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ["model.json", "model.ubj"])
def test_xgboost_reads_each_of_its_file_names(booster: TrainedModel, tmp_path: Path, name: str) -> None:
    booster.model.save_model(str(tmp_path / name))
    got = values(ask(adapter_for(XGBoostServer(str(tmp_path))), body(booster.rows)))
    np.testing.assert_allclose(got, booster.framework_answer(), rtol=0, atol=1e-9)


def test_lightgbm_reads_mlservers_file_name_too(lightgbm_model: TrainedModel, tmp_path: Path) -> None:
    shutil.copy(lightgbm_model.directory / "model.txt", tmp_path / "model.bst")
    got = values(ask(adapter_for(LightGBMServer(str(tmp_path))), body(lightgbm_model.rows)))
    np.testing.assert_allclose(got, lightgbm_model.framework_answer(), rtol=0, atol=1e-9)


def test_float32_answers_reach_json_unrounded(booster: TrainedModel) -> None:
    """xgboost answers float32: the JSON number must read back as exactly that value."""
    answer = ask(adapter_for(XGBoostServer(str(booster.directory))), body(booster.rows))
    expected = booster.framework_answer()
    assert expected.dtype == np.float32
    assert np.array(answer["data"]["ndarray"]).tolist() == expected.astype(np.float64).tolist()
