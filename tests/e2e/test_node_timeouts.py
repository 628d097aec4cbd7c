"""Per-node timeouts (`seldon.io/rest-read-timeout`) are enforced in every execution mode:
a node that takes too long answers a 504 FAILURE naming it, on time where the mode allows
(`thread`, `process`, and `inline` async code), and never as a late 200."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

pytestmark = pytest.mark.slow

ISOLATION = Path(__file__).parent / "isolation"
MODELS = Path(__file__).parent / "models"
REQUEST = {"data": {"ndarray": [[1.0, 2.0]]}}


def deployment(name: str, cls: str, execution: str, seconds: float) -> dict[str, Any]:
    return {
        "apiVersion": "machinelearning.seldon.io/v1alpha2",
        "kind": "SeldonDeployment",
        "metadata": {"name": name},
        "spec": {
            "name": name,
            "annotations": {"seldon.io/rest-read-timeout": "1000", "seldon.io/execution": execution},
            "predictors": [
                {
                    "name": "main",
                    "componentSpecs": [
                        {"spec": {"containers": [{"name": "slow", "image": "slow:1", "env": [
                            {"name": "MODEL_NAME", "value": cls}]}]}}
                    ],
                    "graph": {
                        "name": "slow",
                        "type": "MODEL",
                        "parameters": [{"name": "seconds", "value": str(seconds), "type": "FLOAT"}],
                    },
                }
            ],
        },
    }  # fmt: skip


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    directory = tmp_path / "manifests"
    directory.mkdir()
    shutil.copy(ISOLATION / "Blocking.py", directory)
    shutil.copy(MODELS / "Sleepy.py", directory)
    docs = [
        deployment("sync-thread", "Blocking", "thread", 3),
        deployment("async-inline", "Sleepy", "inline", 3),
        deployment("sync-inline", "Blocking", "inline", 1.6),
    ]
    (directory / "slow.yaml").write_text(yaml.safe_dump_all(docs))
    return directory


def timed(url: str) -> tuple[float, httpx.Response]:
    started = time.monotonic()
    answer = httpx.post(url, json=REQUEST, timeout=30)
    return time.monotonic() - started, answer


@pytest.mark.parametrize("name", ["sync-thread", "async-inline"])
def test_a_node_over_its_timeout_answers_504_on_time(name: str, manifests: Path, start_gateway: Any) -> None:
    gateway = start_gateway(manifests)
    took, answer = timed(f"{gateway.url}/seldon/{name}/api/v0.1/predictions")
    assert answer.status_code == 504, answer.text
    assert took < 1.3, f"the 504 came after {took:.2f} s"
    status = answer.json()["status"]
    assert status["status"] == "FAILURE"
    assert status["info"] == "node 'slow' did not answer predict within 1 s"
    # The work left behind does not hold the next call up beyond its own timeout.
    took, again = timed(f"{gateway.url}/seldon/{name}/api/v0.1/predictions")
    assert again.status_code == 504 and took < 1.3


def test_inline_sync_code_that_overruns_is_a_504_not_a_late_200(manifests: Path, start_gateway: Any) -> None:
    gateway = start_gateway(manifests)
    took, answer = timed(f"{gateway.url}/seldon/sync-inline/api/v0.1/predictions")
    assert answer.status_code == 504, answer.text
    assert 1.5 < took < 3.0  # inline code cannot be interrupted: the 504 comes when it returns
    info = answer.json()["status"]["info"]
    assert info.startswith("node 'slow' answered predict after 1.6")
    assert "over its timeout of 1 s" in info and "run it in a thread or process" in info
