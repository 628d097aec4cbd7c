"""Saved models for the model server tests: each trained once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import trained_models
from tests.trained_models import TrainedModel


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("saved-models")


@pytest.fixture(scope="session")
def logistic(model_root: Path) -> TrainedModel:
    return trained_models.save_sklearn_logistic(model_root / "logistic")


@pytest.fixture(scope="session")
def forest(model_root: Path) -> TrainedModel:
    """Saved with pickle (model.pkl), not joblib."""
    return trained_models.save_sklearn_forest(model_root / "forest", filename="model.pkl")


@pytest.fixture(scope="session")
def regressor(model_root: Path) -> TrainedModel:
    return trained_models.save_sklearn_regressor(model_root / "regressor")


@pytest.fixture(scope="session")
def booster(model_root: Path) -> TrainedModel:
    return trained_models.save_xgboost(model_root / "xgboost")


@pytest.fixture(scope="session")
def lightgbm_model(model_root: Path) -> TrainedModel:
    return trained_models.save_lightgbm(model_root / "lightgbm")


@pytest.fixture(scope="session")
def mlflow_sklearn(model_root: Path) -> TrainedModel:
    return trained_models.save_mlflow_sklearn(model_root / "mlflow-sklearn")


@pytest.fixture(scope="session")
def mlflow_pyfunc(model_root: Path) -> TrainedModel:
    return trained_models.save_mlflow_pyfunc(model_root / "mlflow-pyfunc")
