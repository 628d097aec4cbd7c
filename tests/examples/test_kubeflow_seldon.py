"""The kubeflow-seldon example (examples/kubeflow-seldon/run.py), run the way its README says
and CI runs it (`--small`): three trained digit classifiers served with SKLEARN_SERVER, an A/B
test, and an epsilon-greedy bandit that learns from feedback to favour the most accurate one."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import kubernetes_validate
import matplotlib.image
import numpy as np
import pytest
import yaml

from tests.helpers import ROOT, free_port, seldon_bin

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "examples" / "kubeflow-seldon" / "run.py"
CLAIM = "kubeflow-seldon-models"
DEPLOYMENTS = ("digits-classifier", "digits-abtest", "digits-bandit")
AB_MODELS = ("logistic", "forest")
BANDIT_MODELS = ("tree", "forest", "logistic")
K8S_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]


@dataclass
class Run:
    out: Path
    done: subprocess.CompletedProcess[str]
    summary: dict[str, Any]

    def explain(self) -> str:
        return f"stdout:\n{self.done.stdout[-3000:]}\nstderr:\n{self.done.stderr[-3000:]}"


def example_env() -> dict[str, str]:
    # The example runs `seldon` from this interpreter's environment, as a user's venv would.
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("kubeflow-seldon")
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--small", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=example_env(),
    )
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return Run(out, done, summary)


def models(out: Path) -> dict[str, Any]:
    """The trained models, loaded from the model directories SKLEARN_SERVER served them from."""
    return {name: joblib.load(out / "pvc" / CLAIM / name / "model.joblib") for name in BANDIT_MODELS}


def test_the_example_passes_with_the_bandit_favouring_the_best_model(run: Run) -> None:
    assert run.done.returncode == 0, run.explain()
    assert "Traceback" not in run.done.stderr
    assert "PASS" in run.done.stdout
    summary = run.summary
    accuracy = {name: summary["models"][name]["accuracy"] for name in BANDIT_MODELS}
    # clearly different quality, best last
    assert accuracy["tree"] + 0.1 < accuracy["forest"] < accuracy["logistic"] - 0.1, accuracy
    assert summary["best_model"] == "logistic"

    bandit = summary["bandit"]
    served = bandit["served"]  # [row, branch, predicted, truth] per request, in order
    assert len(served) == 300
    last_third = [entry[1] for entry in served[len(served) - len(served) // 3 :]]
    share = last_third.count(BANDIT_MODELS.index("logistic")) / len(last_third)
    assert share == pytest.approx(bandit["final_share_best"])
    assert share >= 0.70, f"the best model got only {share:.0%} of the last third: {run.explain()}"


def test_the_router_counted_every_feedback_once_on_the_branch_that_answered(run: Run) -> None:
    served = np.asarray(run.summary["bandit"]["served"])
    branches = run.summary["bandit"]["router_state"]["branches"]
    assert [b["name"] for b in branches] == list(BANDIT_MODELS)
    for index, branch in enumerate(branches):
        mine = served[served[:, 1] == index]
        assert branch["tries"] == len(mine), branch
        assert branch["successes"] == pytest.approx(float(np.sum(mine[:, 2] == mine[:, 3]))), branch


def test_every_branch_answers_what_its_model_predicts(run: Run) -> None:
    """Per-branch answers (so per-branch accuracies) are exactly the served model's own predictions."""
    test = np.load(run.out / "test_set.npz")
    X, y = test["X"], test["y"]
    trained = models(run.out)
    for name, model in trained.items():
        assert run.summary["models"][name]["accuracy"] == pytest.approx(model.score(X, y))
    for experiment, names in (("abtest", AB_MODELS), ("bandit", BANDIT_MODELS)):
        served = np.asarray(run.summary[experiment]["served"])
        rows, branches, predicted, truth = served.T
        assert np.array_equal(truth, y[rows])
        for index, name in enumerate(names):
            mine = branches == index
            assert mine.any(), f"{experiment}: branch {name} served nothing"
            assert np.array_equal(predicted[mine], trained[name].predict(X[rows[mine]])), (experiment, name)
            reported = run.summary[experiment]["branches"][index]
            assert reported["model"] == name and reported["requests"] == int(mine.sum())
            assert reported["accuracy"] == pytest.approx(float(np.mean(predicted[mine] == truth[mine])))


def test_the_ab_test_splits_traffic_as_configured(run: Run) -> None:
    ab = run.summary["abtest"]
    assert ab["ratioA"] == 0.5 and len(ab["served"]) == 150
    share_a = ab["branches"][0]["share"]
    assert abs(share_a - 0.5) < 0.15, ab["branches"]  # 150 fair coin flips: sd 0.04
    assert ab["branches"][0]["share"] + ab["branches"][1]["share"] == pytest.approx(1.0)


def test_the_single_model_answers_scikit_learns_own_probabilities(run: Run) -> None:
    single = run.summary["single"]
    assert single["deployment"] == "digits-classifier" and single["model"] == "logistic"
    assert single["requests"] == 50 and single["same_as_scikit_learn"] == 50
    assert single["accuracy"] == pytest.approx(single["local_accuracy"])


def test_the_traffic_share_plot_is_a_png(run: Run) -> None:
    png = run.out / "bandit_traffic.png"
    assert run.summary["png"] == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(png)
    assert image.shape[0] >= 300 and image.shape[1] >= 600 and image.shape[2] in (3, 4)
    assert image.std() > 0.05  # something is drawn


def test_the_written_manifests_render_for_kubernetes(run: Run) -> None:
    manifests = sorted((run.out / "manifests").glob("*.yaml"))
    assert [p.stem for p in manifests] == sorted(DEPLOYMENTS)
    done = subprocess.run(
        [seldon_bin(), "k8s", "render", *map(str, manifests)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    objects = list(yaml.safe_load_all(done.stdout))
    for obj in objects:
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
    claims = set()
    for obj in objects:
        if obj["kind"] == "Deployment":
            for volume in obj["spec"]["template"]["spec"].get("volumes") or []:
                if "persistentVolumeClaim" in volume:
                    claims.add(volume["persistentVolumeClaim"]["claimName"])
    assert claims == {CLAIM}  # the models are read from the claim the training wrote them to


def test_the_example_stops_its_server(run: Run) -> None:
    match = re.search(r"REST http://127\.0\.0\.1:(\d+)", run.done.stdout)
    assert match, run.explain()
    assert not listening(int(match[1]))


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
    except OSError:
        return False
    return True


def test_ctrl_c_stops_the_example_and_its_server(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "stdout"
    with log.open("w") as stdout:
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLE), "--small", "--out", str(tmp_path / "out"), "--port", str(port)],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env=example_env(),
        )
        try:
            deadline = time.monotonic() + 120
            while not ("[3/6]" in log.read_text() and listening(port)):  # seldon serve is up
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not listening(port)


def test_an_unreachable_gateway_is_one_clear_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--small", "--out", str(tmp_path), "--gateway", url],
        capture_output=True,
        text=True,
        timeout=120,
        env=example_env(),
    )
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: POST ") and url in line and "refused" in line.lower(), line
