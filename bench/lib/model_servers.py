"""The model-server scenarios (issue 12): one saved scikit-learn model served without a class
by us (`seldon microservice --server sklearn`), by MLServer's sklearn runtime and by a KServe
`kserve.Model` that loads the same joblib file; same rows, `predict_proba` everywhere.

The model is the kubeflow-seldon example's best classifier (a LogisticRegression on scikit-learn's
digits, 64 features, 10 classes), trained once into `bench/out/sklearn/` by the runner's own
scikit-learn; every server loads that very file, and every readiness answer is checked against the
probabilities the runner computes from it (to 1e-9).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path
from typing import Any

from .config import BENCH, MLSERVER_VENV, OUR_VENV, OUT

SK_DIR = OUT / "sklearn"
MODEL_NAME = "digits"
KSERVE_VENV = Path(os.environ.get("KSERVE_VENV", "/tmp/kservevenv"))
SERVER_KEYS = ("sk-ours", "sk-mlserver", "sk-kserve")
SERVER_PEERS = {"MLServer (mlserver-sklearn)": ("sk-mlserver",), "KServe (kserve.Model)": ("sk-kserve",)}


@cache
def prepared() -> tuple[list[float], list[float]] | str:
    """(the request row, the probabilities expected for it), training and saving the model the
    first time; or why the model cannot be made (no scikit-learn in the runner's venv)."""
    meta = SK_DIR / "meta.json"
    if meta.exists() and (SK_DIR / "model.joblib").exists():
        saved = json.loads(meta.read_text())
        return saved["row"], saved["expected"]
    try:
        import joblib
        from sklearn.datasets import load_digits
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split
    except ImportError as exc:
        return f"scikit-learn is not installed in the runner's venv ({exc})"
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, _ = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    model = LogisticRegression(max_iter=5000).fit(x_train, y_train)
    SK_DIR.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, SK_DIR / "model.joblib")
    row = [float(v) for v in x_test[0]]
    expected = [float(v) for v in model.predict_proba([row])[0]]
    meta.write_text(json.dumps({"row": row, "expected": expected}) + "\n")
    return row, expected


def _close(values: Any, expected: list[float]) -> bool:
    try:
        flat = [float(v) for v in values]
    except (TypeError, ValueError):
        return False
    return len(flat) == len(expected) and all(abs(a - b) < 1e-9 for a, b in zip(flat, expected, strict=True))


def _checker(pick: Callable[[Any], Any], expected: list[float]) -> Callable[[bytes], str | None]:
    def check(body: bytes) -> str | None:
        try:
            values = pick(json.loads(body))
        except (ValueError, KeyError, IndexError, TypeError):
            return f"unexpected answer: {body[:200]!r}"
        return None if _close(values, expected) else f"wrong numbers: {values}"

    return check


def _seldon_values(doc: Any) -> Any:
    data = doc["data"]
    return data["ndarray"][0] if "ndarray" in data else data["tensor"]["values"]


Check = Callable[[bytes], str | None]


def requests(row: list[float], expected: list[float]) -> dict[str, tuple[str, bytes, Check]]:
    """(path, body, check) of each REST protocol."""
    dumps = partial(json.dumps, separators=(",", ":"))
    v2 = {
        "inputs": [{"name": "x", "shape": [1, len(row)], "datatype": "FP64", "data": row}],
        "outputs": [{"name": "predict_proba"}],  # MLServer's sklearn runtime answers `predict` unless asked
    }
    return {
        "seldon": (
            "/api/v1.0/predictions",
            dumps({"data": {"ndarray": [row]}}).encode(),
            _checker(_seldon_values, expected),
        ),
        "v2": (
            f"/v2/models/{MODEL_NAME}/infer",
            dumps(v2).encode(),
            _checker(lambda d: d["outputs"][0]["data"], expected),
        ),
        "kserve-v1": (
            f"/v1/models/{MODEL_NAME}:predict",
            dumps({"instances": [row]}).encode(),
            _checker(lambda d: d["predictions"][0], expected),
        ),
    }


def row_file() -> Path:
    """The request row as JSON, for bench/grpc_load.py --row-file (the gRPC bodies)."""
    return SK_DIR / "row.json"


def ours_argv(http: int, grpc: int, workers: int) -> list[str]:
    return [
        str(OUR_VENV / "bin" / "seldon"), "microservice", "--server", "sklearn", "--model-uri", str(SK_DIR),
        "--http-port", str(http), "--grpc-port", str(grpc), "--workers", str(workers), "--host", "127.0.0.1",
    ]  # fmt: skip


def mlserver_folder(workers: int) -> Path:
    """An MLServer model repository for the model: settings.json (one process, or `workers`
    inference workers) and model-settings.json (mlserver_sklearn.SKLearnModel, the joblib file)."""
    folder = OUT / f"mlserver_sklearn_{workers}"
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"parallel_workers": 0 if workers == 1 else workers, "load_models_at_startup": True}
    model = {
        "name": MODEL_NAME,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(SK_DIR / "model.joblib")},
    }
    (folder / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    (folder / "model-settings.json").write_text(json.dumps(model, indent=2) + "\n")
    return folder


def mlserver_argv(workers: int) -> list[str]:
    return [str(MLSERVER_VENV / "bin" / "mlserver"), "start", str(mlserver_folder(workers))]


def kserve_argv(http: int, grpc: int, workers: int) -> list[str]:
    return [
        str(KSERVE_VENV / "bin" / "python"), str(BENCH / "kserve_model" / "digits_server.py"),
        "--model_dir", str(SK_DIR), "--model_name", MODEL_NAME,
        "--http_port", str(http), "--grpc_port", str(grpc), "--workers", str(workers),
        # its per-request latency log line is a debugging aid, off as in our server and MLServer
        "--enable_latency_logging", "false",
    ]  # fmt: skip
