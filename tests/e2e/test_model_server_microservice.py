"""`seldon microservice --server NAME --model-uri URI`: a saved model served on real ports
without a class of the user's, answering what its framework predicts; a model, a server or
a framework that is not there is one sentence and exit code 1."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests import trained_models
from tests.helpers import free_port, microservice, seldon_bin
from tests.trained_models import TrainedModel, serve_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TrainedModel]:
    root = tmp_path_factory.mktemp("models")
    return {
        "sklearn": trained_models.save_sklearn_logistic(root / "logistic"),
        "xgboost": trained_models.save_xgboost(root / "xgboost"),
        "lightgbm": trained_models.save_lightgbm(root / "lightgbm"),
        "mlflow": trained_models.save_mlflow_pyfunc(root / "mlflow"),
    }


def predict(url: str, rows: np.ndarray, **data: Any) -> dict[str, Any]:
    response = httpx.post(f"{url}/predict", json={"data": {"ndarray": rows.tolist(), **data}}, timeout=30)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def failure(*args: str, cwd: Path | None = None) -> str:
    """Run `seldon microservice ARGS` that must fail: its stderr, after checking it is one
    `error:` sentence, exit code 1 and no traceback."""
    argv = [seldon_bin(), "microservice", *args, "--host", "127.0.0.1"]
    argv += ["--http-port", str(free_port()), "--grpc-port", str(free_port())]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd)
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


@pytest.mark.parametrize("server", ["sklearn", "xgboost", "lightgbm", "mlflow"])
def test_the_server_answers_what_its_framework_predicts(models: dict[str, TrainedModel], server: str) -> None:
    trained = models[server]
    with serve_model(server, trained.directory, timeout=90) as running:
        answer = predict(running.url, trained.rows)
        metadata = httpx.get(f"{running.url}/metadata", timeout=10).json()
    np.testing.assert_allclose(answer["data"]["ndarray"], trained.framework_answer(), rtol=0, atol=1e-9)
    if server == "mlflow":  # its signature, as /metadata
        assert [i["name"] for i in metadata["inputs"]] == trained.feature_names


@pytest.mark.parametrize("server", ["xgboost", "lightgbm"])
def test_boosters_serve_from_several_workers(models: dict[str, TrainedModel], server: str) -> None:
    """A booster loaded before the workers fork would hang their first predict (OpenMP)."""
    trained = models[server]
    with serve_model(server, trained.directory, workers=2, timeout=90) as running:
        for _ in range(6):  # a fresh connection each: both workers answer
            answer = predict(running.url, trained.rows[:5])
            np.testing.assert_allclose(
                answer["data"]["ndarray"], trained.framework_answer(trained.rows[:5]), rtol=0, atol=1e-9
            )


def test_parameters_reach_the_server(models: dict[str, TrainedModel]) -> None:
    trained = models["sklearn"]
    parameters = json.dumps([{"name": "method", "value": "predict", "type": "STRING"}])
    with serve_model("SKLEARN_SERVER", trained.directory, "--parameters", parameters) as running:
        answer = predict(running.url, trained.rows)
    assert answer["data"]["ndarray"] == trained.model.predict(trained.rows).tolist()


def test_model_uri_may_come_as_seldons_parameter(models: dict[str, TrainedModel]) -> None:
    """Seldon's operator hands the model's place to the server as the parameter model_uri."""
    trained = models["sklearn"]
    parameters = json.dumps([{"name": "model_uri", "value": str(trained.directory), "type": "STRING"}])
    with microservice("--server=sklearn", "--parameters", parameters) as running:
        answer = predict(running.url, trained.rows)
    np.testing.assert_allclose(answer["data"]["ndarray"], trained.framework_answer(), rtol=0, atol=1e-9)


def test_a_pvc_uri_is_read_under_the_pvc_root(models: dict[str, TrainedModel], tmp_path: Path) -> None:
    trained = models["sklearn"]
    shutil.copytree(trained.directory, tmp_path / "claims" / "models-claim" / "iris" / "lr")
    uri = "pvc://models-claim/iris/lr"
    with serve_model("sklearn", uri, "--pvc-root", str(tmp_path / "claims")) as running:
        answer = predict(running.url, trained.rows)
    np.testing.assert_allclose(answer["data"]["ndarray"], trained.framework_answer(), rtol=0, atol=1e-9)


SCALER = '''
from pathlib import Path

import numpy as np


class Scaler:
    """A model server of the user's: multiplies the rows by the factor saved in factor.txt."""

    def __init__(self, model_uri: str, offset: float = 0.0) -> None:
        self.model_uri = model_uri
        self.offset = offset

    def load(self) -> None:
        self.factor = float((Path(self.model_uri) / "factor.txt").read_text())

    def predict(self, X, names):
        return np.asarray(X) * self.factor + self.offset
'''


def test_a_server_of_the_users_runs_by_name(tmp_path: Path) -> None:
    (tmp_path / "my_servers.py").write_text(SCALER)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "factor.txt").write_text("2.5")
    with serve_model("SCALER_SERVER=my_servers:Scaler", tmp_path / "model", cwd=tmp_path) as running:
        answer = predict(running.url, np.array([[1.0, 2.0]]))
    assert answer["data"]["ndarray"] == [[2.5, 5.0]]


def test_a_server_config_file_names_servers(tmp_path: Path) -> None:
    (tmp_path / "my_servers.py").write_text(SCALER)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "factor.txt").write_text("3")
    config = tmp_path / "servers.yaml"
    config.write_text("SCALER_SERVER: {class: my_servers:Scaler, requires: [numpy]}\n")
    parameters = json.dumps([{"name": "offset", "value": "1", "type": "FLOAT"}])
    args = [
        "--server-config",
        str(config),
        "--model-uri",
        str(tmp_path / "model"),
        "--parameters",
        parameters,
    ]
    with microservice("--server=SCALER_SERVER", *args, cwd=tmp_path) as running:
        answer = predict(running.url, np.array([[1.0, 2.0]]))
    assert answer["data"]["ndarray"] == [[4.0, 7.0]]


def test_a_missing_framework_says_the_pip_command(tmp_path: Path) -> None:
    (tmp_path / "my_servers.py").write_text(SCALER)
    config = tmp_path / "servers.yaml"
    config.write_text(
        "TORCH_SERVER: {class: my_servers:Scaler, requires: [h1_not_installed_torch], extra: torch}\n"
    )
    error = failure("--server-config", str(config), "--server", "TORCH_SERVER", "--model-uri", str(tmp_path))
    assert error == (
        "error: TORCH_SERVER needs h1_not_installed_torch, which is not installed: "
        "pip install 'seldon-serving[torch]'"
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_truncated_model_is_one_sentence(
    models: dict[str, TrainedModel], tmp_path: Path, workers: str
) -> None:
    directory = tmp_path / "model"
    shutil.copytree(models["sklearn"].directory, directory)
    data = (directory / "model.joblib").read_bytes()
    (directory / "model.joblib").write_bytes(data[: len(data) // 2])
    error = failure("--server", "sklearn", "--model-uri", str(directory), "--workers", workers)
    assert error.startswith(f"error: SKLEARN_SERVER cannot serve modelUri '{directory}': ")
    assert f"{directory}/model.joblib" in error and "truncated" in error


def test_a_model_of_another_format_is_one_sentence(models: dict[str, TrainedModel]) -> None:
    error = failure("--server", "lightgbm", "--model-uri", str(models["xgboost"].directory / "model.bst"))
    assert "model.bst is not a model saved by LightGBM's save_model" in error


def test_a_missing_model_is_one_sentence(tmp_path: Path) -> None:
    error = failure("--server", "xgboost", "--model-uri", str(tmp_path / "nowhere"))
    assert error == f"error: modelUri '{tmp_path / 'nowhere'}': {tmp_path / 'nowhere'} does not exist"


def test_a_pvc_uri_without_a_pvc_root_is_one_sentence() -> None:
    error = failure("--server", "sklearn", "--model-uri", "pvc://models-claim/lr")
    assert "pvc://models-claim/lr" in error and "--pvc-root" in error


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--server", "sklearn"], "error: --server sklearn needs --model-uri URI: where the saved model is"),
        (
            ["--server", "tensorflow", "--model-uri", "."],
            "error: --server 'tensorflow' is not a model server",
        ),
        (["Model", "--server", "sklearn", "--model-uri", "."], "error: give a class (Model) or --server"),
        (["--model-uri", "."], "error: give the class to serve (INTERFACE_NAME), or a saved model"),
        (
            ["--server", "mlflow", "--model-uri", ".", "--parameters", '[{"name": "xtype", "value": "csv"}]'],
            "error: MLFLOW_SERVER parameter xtype 'csv' is not one of ndarray, dataframe",
        ),
    ],
)
def test_command_line_mistakes_are_one_sentence(args: list[str], expected: str, tmp_path: Path) -> None:
    assert failure(*args, cwd=tmp_path).startswith(expected)


def test_seldon_core_microservice_serves_a_server_class_by_its_dotted_name(
    models: dict[str, TrainedModel],
) -> None:
    """The drop-in's own command line, as Seldon's sklearnserver image ran it."""
    trained = models["sklearn"]
    parameters = json.dumps([{"name": "model_uri", "value": str(trained.directory), "type": "STRING"}])
    with microservice(
        "seldon_serving.components.servers.sklearn.SKLearnServer",
        "--parameters",
        parameters,
        command="seldon-core-microservice",
    ) as running:
        answer = predict(running.url, trained.rows)
    assert answer["data"]["names"] == ["0", "1", "2"]
    np.testing.assert_allclose(answer["data"]["ndarray"], trained.framework_answer(), rtol=0, atol=1e-9)
