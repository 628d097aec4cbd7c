"""The adapter's answers compared with the real seldon-core 1.18 wrapper for the same classes.

Runs seldon_core.seldon_methods in its own venv (one subprocess for all cases); skipped when
that venv is missing.  Known, deliberate differences are listed in KNOWN_DIFFERENCES.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from seldon_serving.components.adapter import ComponentAdapter
from seldon_serving.protocol.json_codec import decode_feedback, decode_message, decode_message_list
from tests.components._util import as_json, run
from tests.helpers import compat_python

HERE = Path(__file__).parent
SELDON_PYTHON = compat_python()

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(not SELDON_PYTHON.exists(), reason=f"no seldon-core venv at {SELDON_PYTHON}"),
]

SOURCE = """
import numpy as np

class Doubler:
    def predict(self, X, features_names):
        return X * 2

class Iris:
    class_names = ["setosa", "versicolor"]
    def predict(self, X, features_names, meta=None):
        return np.array([[0.25, 0.75]])
    def tags(self):
        return {"model": "iris", "shared": "model"}
    def metrics(self):
        return [{"type": "COUNTER", "key": "iris_calls", "value": 1}]

class Labels:
    def predict(self, X, features_names):
        return ["cat", "dog"]

class Lengths:
    def predict(self, X, features_names):
        return [len(X), 2]

class AsJson:
    def predict(self, X, features_names):
        return {"echo": X}

class Router:
    def route(self, X, features_names):
        return 1

class Shift:
    def transform_input(self, X, features_names):
        return X + 1
    def transform_output(self, X, features_names):
        return X - 1

class First:
    def aggregate(self, Xs, features_names_list):
        return Xs[0]

class Feedback:
    def send_feedback(self, features, feature_names, reward, truth, routing=None):
        return None

class Healthy:
    pass
"""

META = {"puid": "p-1", "tags": {"shared": "request", "x": 1}, "requestPath": {"up": "up:1"}}
NDARRAY = {"data": {"names": ["a", "b"], "ndarray": [[1, 2]]}, "meta": META}
TENSOR = {"data": {"names": ["a", "b"], "tensor": {"shape": [1, 2], "values": [1.0, 2.0]}}}
CHILDREN = {
    "seldonMessages": [
        {
            "data": {"ndarray": [[1, 2]]},
            "meta": {"puid": "p-2", "tags": {"a": 1}, "requestPath": {"m1": "i:1"}},
        },
        {
            "data": {"ndarray": [[3, 4]]},
            "meta": {"tags": {"b": 2}, "metrics": [{"type": "GAUGE", "key": "g", "value": 2}]},
        },
    ]
}
FEEDBACK = {"request": NDARRAY, "response": {"meta": {"routing": {"unit": 1}}}, "reward": 1}

CASES: list[tuple[str, str, Any]] = [
    ("Doubler", "predict", NDARRAY),
    ("Doubler", "predict", TENSOR),
    ("Iris", "predict", NDARRAY),
    ("Iris", "predict", TENSOR),
    ("Labels", "predict", TENSOR),
    ("Lengths", "predict", {"strData": "hello"}),
    ("AsJson", "predict", {"jsonData": {"k": [1, 2]}}),
    ("Router", "route", NDARRAY),
    ("Router", "route", TENSOR),
    ("Shift", "transform_input", TENSOR),
    ("Shift", "transform_output", NDARRAY),
    ("First", "aggregate", CHILDREN),
    ("Feedback", "send_feedback", FEEDBACK),
    ("Healthy", "health_status", None),
]


def _normalise(value: Any) -> Any:
    """Compare meaning, not spelling: numbers as floats, empty names/meta dropped."""
    if isinstance(value, dict):
        out = {k: _normalise(v) for k, v in value.items()}
        if out.get("names") == []:
            del out["names"]
        if out.get("meta") == {}:
            del out["meta"]
        return out
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def _ours(namespace: dict[str, Any], cls: str, method: str, request: Any) -> dict[str, Any]:
    adapter = ComponentAdapter(namespace[cls](), unit_id="unit", image="img:1")
    if method == "aggregate":
        return as_json(run(adapter.aggregate(decode_message_list(request))))
    if method == "send_feedback":
        return as_json(run(adapter.send_feedback(decode_feedback(request))))
    if method == "health_status":
        return as_json(run(adapter.health_status()))
    return as_json(run(getattr(adapter, method)(decode_message(request))))


@pytest.fixture(scope="module")
def seldon_answers() -> list[Any]:
    assert SELDON_PYTHON is not None
    job = {"source": SOURCE, "cases": [{"cls": c, "method": m, "request": r} for c, m, r in CASES]}
    env = {
        **os.environ,
        "PREDICTIVE_UNIT_ID": "unit",
        "PREDICTIVE_UNIT_IMAGE": "img:1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    completed = subprocess.run(
        [str(SELDON_PYTHON), str(HERE / "_seldon_driver.py")],
        input=json.dumps(job).encode(),
        capture_output=True,
        timeout=120,
        env=env,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(completed.stderr.decode(errors="replace")[-3000:])
    return json.loads(completed.stdout)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{c}.{m}" for c, m, _ in CASES])
def test_same_answer_as_seldon_core(index: int, seldon_answers: list[Any]) -> None:
    namespace: dict[str, Any] = {}
    exec(SOURCE, namespace)
    cls, method, request = CASES[index]
    theirs = seldon_answers[index]
    assert "error" not in theirs, theirs
    ours = _ours(namespace, cls, method, request)
    assert _normalise(ours) == _normalise(theirs)
