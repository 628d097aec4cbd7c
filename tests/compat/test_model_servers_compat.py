"""Saved models served by `seldon microservice --server`, called by the REAL SeldonClient
(seldon-core 1.18.2, in its own venv) over REST and gRPC with ndarray and tensor payloads:
each answer is what the framework's own predict / predict_proba gives on the same rows, to 1e-9."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seldon_serving.protocol import json_codec
from tests import trained_models
from tests.compat.conftest import run_seldon_client
from tests.helpers import Server, enter_all
from tests.trained_models import TrainedModel, serve_model

pytestmark = [pytest.mark.compat, pytest.mark.slow]

TRANSPORTS = ("rest", "grpc")
PAYLOADS = ("ndarray", "tensor")


def _save(root: Path) -> dict[str, tuple[str, TrainedModel]]:
    """name -> (the server that serves it, the saved model)."""
    return {
        "sklearn-logistic": ("sklearn", trained_models.save_sklearn_logistic(root / "logistic")),
        "sklearn-forest": ("sklearn", trained_models.save_sklearn_forest(root / "forest")),
        "xgboost": ("xgboost", trained_models.save_xgboost(root / "xgboost")),
        "lightgbm": ("lightgbm", trained_models.save_lightgbm(root / "lightgbm")),
        "mlflow-pyfunc": ("mlflow", trained_models.save_mlflow_pyfunc(root / "mlflow-pyfunc")),
        "mlflow-sklearn": ("mlflow", trained_models.save_mlflow_sklearn(root / "mlflow-sklearn")),
    }


@pytest.fixture(scope="module")
def answers(
    compat_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str, str], tuple[dict[str, Any], np.ndarray]]:
    """(model, transport, payload) -> (SeldonClient's outcome, the framework's answer), every
    call made by ONE SeldonClient process against every server at once."""
    saved = _save(tmp_path_factory.mktemp("models"))
    with contextlib.ExitStack() as stack:
        contexts = [serve_model(server, trained.directory, timeout=120) for server, trained in saved.values()]
        servers: dict[str, Server] = dict(zip(saved, enter_all(stack, contexts), strict=True))
        keys: list[tuple[str, str, str]] = []
        calls: list[dict[str, Any]] = []
        for name, (_, trained) in saved.items():
            for transport in TRANSPORTS:
                endpoint = (
                    servers[name].grpc if transport == "grpc" else f"127.0.0.1:{servers[name].http_port}"
                )
                for payload in PAYLOADS:
                    keys.append((name, transport, payload))
                    client = {
                        "transport": transport,
                        "payload_type": payload,
                        "microservice_endpoint": endpoint,
                    }
                    calls.append(
                        {
                            "call": "microservice",
                            "client": client,
                            "kwargs": {"method": "predict", "data": trained.rows.tolist()},
                        }
                    )
        outcomes = run_seldon_client(compat_python, calls, tensorflow=False)
    return {
        key: (outcome, saved[key[0]][1].framework_answer())
        for key, outcome in zip(keys, outcomes, strict=True)
    }


CASES = [
    (name, transport, payload)
    for name in (
        "sklearn-logistic",
        "sklearn-forest",
        "xgboost",
        "lightgbm",
        "mlflow-pyfunc",
        "mlflow-sklearn",
    )
    for transport in TRANSPORTS
    for payload in PAYLOADS
]


@pytest.mark.parametrize(("name", "transport", "payload"), CASES)
def test_seldon_client_gets_what_the_framework_predicts(
    answers: dict[tuple[str, str, str], tuple[dict[str, Any], np.ndarray]],
    name: str,
    transport: str,
    payload: str,
) -> None:
    outcome, expected = answers[(name, transport, payload)]
    assert outcome["success"], outcome["msg"]
    message = json_codec.decode_message(outcome["response"])
    assert message.form == payload  # answered in the form it was asked in
    got = np.asarray(message.array(), dtype=np.float64)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


def test_class_names_reach_seldon_client(
    answers: dict[tuple[str, str, str], tuple[dict[str, Any], np.ndarray]],
) -> None:
    for transport in TRANSPORTS:
        logistic = json_codec.decode_message(
            answers[("sklearn-logistic", transport, "ndarray")][0]["response"]
        )
        pyfunc = json_codec.decode_message(answers[("mlflow-pyfunc", transport, "tensor")][0]["response"])
        assert list(logistic.names) == ["0", "1", "2"]
        assert list(pyfunc.names) == ["setosa", "versicolor", "virginica"]
