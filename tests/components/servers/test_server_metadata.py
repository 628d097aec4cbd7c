"""`/metadata` of a model server: the MLflow signature, or Seldon's metadata.yaml beside the model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from seldon_serving.components.servers.mlflow import MLFlowServer
from seldon_serving.components.servers.sklearn import SKLearnServer
from seldon_serving.components.servers.xgboost import XGBoostServer
from tests.components.servers._serving import adapter_for
from tests.trained_models import TrainedModel

DEFAULTS = {"name": "", "versions": [""], "platform": "", "inputs": [], "outputs": [], "custom": {}}

METADATA_YAML = """
name: iris-classifier
versions: [v3]
platform: seldon
inputs:
  - messagetype: ndarray
    schema: {names: [sepal_length, sepal_width, petal_length, petal_width], shape: [4]}
outputs:
  - messagetype: ndarray
    schema: {shape: [3]}
"""


def test_mlflow_tensor_signature_is_the_metadata(mlflow_sklearn: TrainedModel) -> None:
    metadata = adapter_for(MLFlowServer(str(mlflow_sklearn.directory))).metadata()
    assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert metadata["outputs"] == [{"name": "output-0", "datatype": "INT64", "shape": [-1]}]


def test_mlflow_column_signature_names_each_column(mlflow_pyfunc: TrainedModel) -> None:
    metadata = adapter_for(MLFlowServer(str(mlflow_pyfunc.directory))).metadata()
    assert metadata["inputs"] == [
        {"name": name, "datatype": "FP64", "shape": [-1, 1]} for name in mlflow_pyfunc.feature_names
    ]
    assert [output["name"] for output in metadata["outputs"]] == ["setosa", "versicolor", "virginica"]


@pytest.mark.parametrize("fixture", ["logistic", "mlflow_pyfunc"])
def test_metadata_yaml_beside_the_model_is_the_metadata(
    request: pytest.FixtureRequest, fixture: str, tmp_path: Path
) -> None:
    trained: TrainedModel = request.getfixturevalue(fixture)
    directory = tmp_path / "model"
    shutil.copytree(trained.directory, directory)
    (directory / "metadata.yaml").write_text(METADATA_YAML)
    server = SKLearnServer(str(directory)) if fixture == "logistic" else MLFlowServer(str(directory))

    metadata = adapter_for(server).metadata()

    assert metadata["name"] == "iris-classifier" and metadata["versions"] == ["v3"]
    assert metadata["inputs"][0]["schema"]["names"][0] == "sepal_length"


def test_an_unreadable_metadata_yaml_is_ignored_as_seldon_does(
    booster: TrainedModel, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "model"
    shutil.copytree(booster.directory, directory)
    (directory / "metadata.yaml").write_text("name: [unclosed\n")
    adapter = adapter_for(XGBoostServer(str(directory)))
    assert adapter.metadata() == DEFAULTS
    assert "metadata.yaml cannot be used as the model's metadata" in caplog.text


def test_without_metadata_the_defaults_stand(logistic: TrainedModel) -> None:
    assert adapter_for(SKLearnServer(str(logistic.directory))).metadata() == DEFAULTS
