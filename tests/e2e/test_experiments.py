"""A/B statistics through `seldon serve --workers 2`: `seldon get` (-o json and -o wide) and the
Prometheus gauges show every request and feedback, whichever worker took it, and they are still
there after a restart."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import helpers

pytestmark = pytest.mark.slow

NAME = "myab"
# `seldon generate abtest myab` (the seed's A/B test prototype), trimmed: the mock classifier twice.
MANIFEST = """
apiVersion: machinelearning.seldon.io/v1alpha2
kind: SeldonDeployment
metadata: {name: myab}
spec:
  name: myab
  predictors:
  - name: myab
    componentSpecs:
    - spec:
        containers:
        - {name: classifier-1, image: "seldonio/mock_classifier:1.0"}
        - {name: classifier-2, image: "seldonio/mock_classifier:1.0"}
    graph:
      name: random-ab-test
      implementation: RANDOM_ABTEST
      parameters: [{name: ratioA, type: FLOAT, value: "0.5"}]
      children:
      - {name: classifier-1, type: MODEL, endpoint: {type: REST}, children: []}
      - {name: classifier-2, type: MODEL, endpoint: {type: REST}, children: []}
"""


def stored_entry(server: helpers.Gateway) -> dict[str, Any]:
    """status.experiments' one entry, from the admin API (what `seldon get` reads)."""
    answer = httpx.get(f"{server.admin_url}/admin/deployments/default/{NAME}", timeout=30)
    assert answer.status_code == 200, answer.text
    [entry] = answer.json()["manifest"]["status"]["experiments"]
    return dict(entry)


def settled(server: helpers.Gateway, requests: int) -> None:
    """Wait until every worker published its counts (each does about once a second)."""
    deadline = time.monotonic() + 10
    while sum(b["requests"] for b in stored_entry(server)["branches"]) != requests:
        assert time.monotonic() < deadline, "the workers' counts did not all arrive within 10 s"
        time.sleep(0.2)


def test_ab_statistics_of_two_workers_in_get_and_prometheus(tmp_path: Path) -> None:
    (tmp_path / "myab.yaml").write_text(MANIFEST)
    body = {"data": {"ndarray": [[1.0, 2.0]]}}
    sent = {0: 0, 1: 0}
    rewarded = {0: 0.0, 1: 0.0}
    with helpers.gateway(tmp_path, state_dir=tmp_path / "state", workers=2) as server:
        # A new connection per call: the kernel spreads them over both workers.
        with httpx.Client(timeout=30, headers={"connection": "close"}) as client:
            url = f"{server.url}/seldon/{NAME}/api/v0.1"
            for i in range(120):
                answer = client.post(f"{url}/predictions", json=body).json()
                branch = answer["meta"]["routing"]["random-ab-test"]
                sent[branch] += 1
                reward = 1.0 if branch == 1 or i % 3 == 0 else 0.0
                feedback = {"request": body, "response": answer, "reward": reward}
                assert client.post(f"{url}/feedback", json=feedback).status_code == 200
                rewarded[branch] += reward
        settled(server, 120)
        shown = server.cli("get", NAME, "-o", "json")
        assert shown.returncode == 0, shown.stderr
        [entry] = json.loads(shown.stdout)["status"]["experiments"]
        assert (entry["kind"], entry["predictor"], entry["node"]) == ("router", NAME, "random-ab-test")
        assert entry["test"] == "two-proportion z-test"
        by_name = {b["branch"]: b for b in entry["branches"]}
        assert list(by_name) == ["classifier-1", "classifier-2"]
        for index, name in enumerate(by_name):
            assert by_name[name]["requests"] == sent[index]
            assert by_name[name]["feedback"] == sent[index]
            assert by_name[name]["reward_mean"] == pytest.approx(rewarded[index] / sent[index])
        [comparison] = entry["comparisons"]
        assert comparison["leader"] == "classifier-2" and comparison["p_value"] < 0.01

        wide = server.cli("get", NAME, "-o", "wide")
        assert wide.returncode == 0, wide.stderr
        assert "A/B statistics of router random-ab-test" in wide.stdout
        row = next(
            line.split() for line in wide.stdout.splitlines() if line.strip().startswith("classifier-1")
        )
        assert row[1:3] == [str(sent[0]), "0"]  # requests, errors

        scrape = httpx.get(f"{server.admin_url}/metrics", timeout=30).text
        labels = f'branch="classifier-2",deployment="{NAME}",namespace="default",node="random-ab-test"'
        assert f'seldon_experiment_requests{{{labels},predictor="{NAME}"}} {float(sent[1])}' in scrape
        assert f'seldon_experiment_leader{{{labels},predictor="{NAME}"}} 1.0' in scrape
        # Seldon's feedback counters carry the worker: both workers took some of the calls above.
        workers = set(re.findall(r'seldon_api_model_feedback_total\{[^}]*worker_id="(\d+)"', scrape))
        assert len(workers) == 2, f"feedback reached workers {workers}: the test did not cross workers"

    # Restarted on the same state: the statistics are still there.
    with helpers.gateway(tmp_path, state_dir=tmp_path / "state", workers=1) as server:
        assert [b["requests"] for b in stored_entry(server)["branches"]] == [sent[0], sent[1]]
