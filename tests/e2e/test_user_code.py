"""User code as a newcomer writes it: classes that share a file name, exceptions, several
workers; what the server runs and what its log says."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.deploy.gateway import deployment, unit, write
from tests.helpers import ROOT, Gateway, Server

pytestmark = pytest.mark.slow

MODELS = ROOT / "tests" / "e2e" / "models"
X = {"data": {"ndarray": [[1.0, 2.0]]}}


def test_classes_with_the_same_file_name_each_run_their_own_code(
    start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    paths = []
    for project, answer in (("projA", 1.0), ("projB", 2.0)):
        directory = tmp_path / project
        directory.mkdir()
        source = f"class Model:\n    def predict(self, X, names=None):\n        return [[{answer}]]\n"
        (directory / "Model.py").write_text(source)
        manifest = deployment(project.lower(), unit("model", "MODEL"), {"model": "Model"})
        paths.append(write(directory, "deployment.yaml", manifest))
    gateway = start_gateway(*paths)
    for name, expected in (("proja", 1.0), ("projb", 2.0)):
        r = httpx.post(f"{gateway.url}/seldon/{name}/api/v0.1/predictions", json=X)
        assert r.status_code == 200 and r.json()["data"]["ndarray"] == [[expected]], (name, r.text)


def wait_for_log(server: Server, pattern: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = server.log()
        if re.search(pattern, log):
            return log
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} never appeared in the log:\n{server.log()}")


def test_a_user_exception_is_logged_with_its_type_and_traceback_never_sent(
    start_microservice: Callable[..., Server],
) -> None:
    server = start_microservice("Picky", cwd=MODELS)
    r = httpx.post(server.url + "/predict", json=X)
    assert r.status_code == 500 and r.json()["status"]["info"] == "'threshold'"
    assert "Traceback" not in r.text and "KeyError" not in r.text
    log = wait_for_log(server, r"KeyError: 'threshold'")
    assert "Traceback (most recent call last)" in log and 'Picky.py", line' in log


def test_log_lines_say_which_worker_wrote_them_and_shared_news_comes_once(
    start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    manifest = deployment("picky", unit("picky", "MODEL"), {"picky": "Picky"})
    path = write(tmp_path / "m", "picky.yaml", manifest)
    (tmp_path / "m" / "Picky.py").write_text((MODELS / "Picky.py").read_text())
    gateway = start_gateway(path, workers=2, log_level="INFO")
    log = wait_for_log(gateway, r"deployment default/picky generation 1 serving")
    assert len(re.findall(r"deployment default/picky generation 1 serving", log)) == 1
    with httpx.Client() as client:  # new connections: the kernel spreads them over both workers
        for _ in range(20):
            client.post(
                f"{gateway.url}/seldon/picky/api/v0.1/predictions", json=X, headers={"connection": "close"}
            )
    log = wait_for_log(gateway, r"\[w1\] .*KeyError: 'threshold'|\[w1\] seldon_serving")
    failures = [line for line in log.splitlines() if "node 'picky' failed" in line]
    assert failures and all(re.search(r" \[w[01]\] ", line) for line in failures)


def test_a_stateful_component_on_several_workers_leaves_no_temporary_state(
    start_microservice: Callable[..., Server], tmp_path: Path
) -> None:
    params = '[{"name":"n_branches","value":"2","type":"INT"}]'
    server = start_microservice(
        "seldon_serving.components.builtin.EpsilonGreedy",
        "--parameters",
        params,
        service_type="ROUTER",
        workers=2,
        env={"TMPDIR": str(tmp_path)},
    )
    assert httpx.post(server.url + "/route", json=X).status_code == 200
    assert [p.name for p in tmp_path.glob("seldon-component-state-*")]  # shared by the workers
    server.process.terminate()
    server.process.wait(20)
    assert not list(tmp_path.glob("seldon-component-state-*"))
    assert os.path.isdir(tmp_path)


def test_a_class_written_against_seldon_cores_api_runs_in_the_gateway(
    start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    # `import seldon_core` finds our stand-in of its user-facing API (the real one cannot be
    # installed beside us), in-process in the gateway as under `seldon microservice`.
    directory = tmp_path / "m"
    manifest = deployment("api", unit("api", "MODEL"), {"api": "UsesSeldonApi"})
    path = write(directory, "api.yaml", manifest)
    (directory / "UsesSeldonApi.py").write_text((ROOT / "tests/compat/models/UsesSeldonApi.py").read_text())
    gateway = start_gateway(path)
    answer = httpx.post(f"{gateway.url}/seldon/api/api/v0.1/predictions", json=X).json()
    assert answer["data"]["ndarray"] == [[2.0, 4.0]] and answer["meta"]["tags"] == {"doubled": True}
    assert [m["key"] for m in answer["meta"]["metrics"]] == ["calls", "size", "took"]
    refused = httpx.post(
        f"{gateway.url}/seldon/api/api/v0.1/predictions", json={"data": {"ndarray": [[-1.0]]}}
    )
    assert refused.status_code == 422 and "negative input" in refused.json()["status"]["info"]
