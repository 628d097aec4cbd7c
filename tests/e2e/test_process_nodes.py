"""`process` nodes (`seldon.io/execution: process`): a user class in a child process of the
gateway, over a Unix socket.  It answers as the same class inline does; `seldon get -o wide`
shows its pid and restarts; a killed or stuck child is replaced while other deployments keep
serving; no child outlives its deployment or its gateway; and `seldon.io/python` runs a node
with a virtualenv of its own, refused in one sentence when the interpreter cannot serve."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from seldon_serving.components.parameters import parse_parameters
from seldon_serving.engine.process import seldon_parameters
from tests.helpers import Gateway, free_port, running, seldon_bin, wait_until

pytestmark = pytest.mark.slow

MODELS = Path(__file__).parent / "models"
X = {"data": {"ndarray": [[1.0, 2.0]]}}
RUNS = re.compile(r"process pid (\d+), (\d+) restarts?, ")


def node(name: str, *children: dict[str, Any], kind: str = "MODEL", **parameters: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "parameters": [{"name": k, "value": v, "type": "STRING"} for k, v in parameters.items()],
        "children": list(children),
    }


def sdep(name: str, graph: dict[str, Any], classes: dict[str, str], **annotations: str) -> dict[str, Any]:
    """A SeldonDeployment whose nodes are the user classes `classes` names (node -> class)."""
    containers = [
        {"name": unit, "env": [{"name": "MODEL_NAME", "value": cls}]} for unit, cls in classes.items()
    ]
    return {
        "apiVersion": "machinelearning.seldon.io/v1alpha2",
        "kind": "SeldonDeployment",
        "metadata": {"name": name},
        "spec": {
            "name": name,
            "annotations": annotations,
            "predictors": [{"name": "main", "componentSpecs": [{"spec": {"containers": containers}}],
                            "graph": graph}],
        },
    }  # fmt: skip


def write(directory: Path, docs: list[dict[str, Any]], *models: str) -> Path:
    """The manifests in `directory`, with the model classes they need beside them."""
    directory.mkdir(parents=True, exist_ok=True)
    for model in models:
        shutil.copy(MODELS / f"{model}.py", directory)
    path = directory / "deployments.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


def probe(name: str, execution: str) -> dict[str, Any]:
    return sdep(
        name, node("probe", scale="2"), {"probe": "ProcessProbe"}, **{"seldon.io/execution": execution}
    )


def predict(gateway: Gateway, name: str, body: dict[str, Any] = X, timeout: float = 30) -> httpx.Response:
    return httpx.post(f"{gateway.url}/seldon/{name}/api/v1.0/predictions", json=body, timeout=timeout)


def runs(gateway: Gateway, name: str) -> dict[str, str]:
    """How each node of a deployment runs, as `seldon get -o wide` shows it (from the admin API)."""
    item = httpx.get(f"{gateway.admin_url}/admin/deployments/default/{name}", timeout=10).json()
    return {n["name"]: n["runs"] for p in item["predictors"] for n in p["nodes"]}


def child(gateway: Gateway, name: str, unit: str) -> tuple[int, int]:
    """(pid, restarts) of a process node."""
    found = RUNS.match(runs(gateway, name)[unit])
    assert found, runs(gateway, name)
    return int(found[1]), int(found[2])


def status(gateway: Gateway, name: str) -> dict[str, Any]:
    item = httpx.get(f"{gateway.admin_url}/admin/deployments/default/{name}", timeout=10).json()
    return dict(item["manifest"]["status"])


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (reaped or not, a zombie runs nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def socket_dir(pid: int) -> Path:
    """The private directory of a node process's socket (its --uds argument's)."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    return Path(argv[argv.index("--uds") + 1]).parent


def comparable(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body = dict(answer.json())
    if "meta" in body:
        body["meta"] = {k: v for k, v in body["meta"].items() if k != "puid"}
    return body


def test_a_process_node_answers_as_the_same_class_inline(tmp_path: Path, start_gateway: Any) -> None:
    def graph(name: str, execution: str) -> dict[str, Any]:
        tree = node("router", node("low", scale="2"), node("high", scale="3"), kind="ROUTER", branch="1")
        classes = {"router": "ProcessRouter", "low": "ProcessProbe", "high": "ProcessProbe"}
        return sdep(name, tree, classes, **{"seldon.io/execution": execution})

    docs = [graph("same-inline", "inline"), graph("same-process", "process")]
    gateway = start_gateway(write(tmp_path / "m", docs, "ProcessProbe", "ProcessRouter"))
    table = gateway.cli("get", "-o", "wide")
    assert table.returncode == 0, table.stderr
    line = next(row for row in table.stdout.splitlines() if row.startswith("same-process"))
    for unit, cls in (("router", "ProcessRouter"), ("low", "ProcessProbe"), ("high", "ProcessProbe")):
        assert re.search(rf"{unit}=process pid \d+, 0 restarts, {cls}", line), line
    assert "router=in-process ProcessRouter" in table.stdout

    names = ("same-inline", "same-process")
    # Round 1 goes to `high`; its feedback makes the router choose `low` from then on (round 2);
    # round 2's feedback reaches `low`, whose tags say so in round 3.
    seen = []
    for _ in range(3):
        answers = {name: predict(gateway, name) for name in names}
        assert comparable(answers["same-process"]) == comparable(answers["same-inline"])
        seen.append(answers["same-process"].json())
        for name, answer in answers.items():
            feedback = {"request": X, "response": answer.json(), "reward": 0.5}
            sent = httpx.post(f"{gateway.url}/seldon/{name}/api/v1.0/feedback", json=feedback, timeout=30)
            answers[name] = sent
        assert comparable(answers["same-process"]) == comparable(answers["same-inline"])
    assert [a["data"]["ndarray"] for a in seen] == [[[3.0, 6.0]], [[2.0, 4.0]], [[2.0, 4.0]]]
    assert [a["meta"]["routing"] for a in seen] == [{"router": 1}, {"router": 0}, {"router": 0}]
    assert [a["meta"]["tags"]["rewards"] for a in seen] == [0.0, 0.0, 0.5]
    assert seen[0]["meta"]["metrics"] == [{"type": "COUNTER", "key": "probe_calls", "value": 1}]
    for path in ("metadata/high", "metadata"):
        documents = [
            httpx.get(f"{gateway.url}/seldon/{name}/api/v1.0/{path}", timeout=10)
            for name in ("same-inline", "same-process")
        ]
        assert all(d.status_code == 200 for d in documents), [d.text for d in documents]
        assert documents[0].json() == documents[1].json()
    high = documents[1].json()["models"]["high"]
    assert high["versions"] == ["probe/v1"] and high["inputs"][0]["schema"]["names"] == ["a", "b"]


class Traffic(threading.Thread):
    """Predictions to one deployment, back to back, until stopped: every status seen."""

    def __init__(self, gateway: Gateway, name: str) -> None:
        super().__init__(daemon=True)
        self.gateway, self.name = gateway, name
        self.statuses: list[int] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stopping.is_set():
                answer = client.post(f"{self.gateway.url}/seldon/{self.name}/api/v1.0/predictions", json=X)
                self.statuses.append(answer.status_code)
                time.sleep(0.01)


def test_a_killed_node_process_is_restarted_while_other_deployments_keep_serving(
    tmp_path: Path, start_gateway: Any
) -> None:
    docs = [probe("victim", "process"), probe("bystander", "process")]
    gateway = start_gateway(write(tmp_path / "m", docs, "ProcessProbe"))
    pid, restarts = child(gateway, "victim", "probe")
    other, _ = child(gateway, "bystander", "probe")
    assert restarts == 0 and pid != other
    traffic = Traffic(gateway, "bystander")
    traffic.start()
    try:
        time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        failures: list[httpx.Response] = []
        while (answer := predict(gateway, "victim")).status_code != 200:
            failures.append(answer)
            assert time.monotonic() - killed < 5.0, f"still down after 5 s: {answer.text}"
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        traffic.stopping.set()
        traffic.join(15)
    for failure in failures:  # while it was down: a 503 naming the node
        assert failure.status_code == 503, failure.text
        assert "node 'probe' (process" in failure.json()["status"]["info"], failure.text
    new_pid, restarts = child(gateway, "victim", "probe")
    assert restarts == 1 and new_pid != pid and not alive(pid)
    assert child(gateway, "bystander", "probe") == (other, 0)
    assert traffic.statuses and set(traffic.statuses) == {200}, traffic.statuses


def test_a_stuck_node_answers_504_on_time_and_its_process_is_replaced(
    tmp_path: Path, start_gateway: Any
) -> None:
    doc = sdep(
        "stuck",
        node("stall"),
        {"stall": "Stall"},
        **{"seldon.io/execution": "process", "seldon.io/rest-read-timeout": "1000"},
    )
    gateway = start_gateway(write(tmp_path / "m", [doc], "Stall"))
    assert predict(gateway, "stuck", {"data": {"ndarray": [[0.0]]}}).status_code == 200
    pid, _ = child(gateway, "stuck", "stall")
    started = time.monotonic()
    answer = predict(gateway, "stuck", {"data": {"ndarray": [[30.0]]}})
    took = time.monotonic() - started
    assert answer.status_code == 504, answer.text
    assert took < 1.3, f"the 504 came after {took:.2f} s"
    assert answer.json()["status"]["info"] == "node 'stall' did not answer predict within 1 s"
    assert answer.json()["status"]["status"] == "FAILURE"
    # The child still sleeps (30 s): 2 s after the timeout it is killed and replaced, and a fast
    # call is answered long before the sleep would have ended.
    wait_until(
        lambda: predict(gateway, "stuck", {"data": {"ndarray": [[0.0]]}}).status_code == 200,
        "a fast call answered by the replaced process",
        timeout=10.0,
        every=0.1,
    )
    assert time.monotonic() - started < 12.0
    new_pid, restarts = child(gateway, "stuck", "stall")
    assert restarts == 1 and new_pid != pid and not alive(pid)
    assert "killing its process" in gateway.log()


def test_no_node_process_outlives_its_deployment_or_its_gateway(tmp_path: Path, start_gateway: Any) -> None:
    path = write(tmp_path / "m", [probe("first", "process"), probe("second", "process")], "ProcessProbe")
    gateway = start_gateway(path)
    first, _ = child(gateway, "first", "probe")
    second, _ = child(gateway, "second", "probe")
    assert alive(first) and alive(second)
    dirs = [socket_dir(first), socket_dir(second)]
    assert all(d.is_dir() for d in dirs)
    deleted = gateway.cli("delete", "first")
    assert deleted.returncode == 0, deleted.stderr
    wait_until(lambda: not alive(first), "the deleted deployment's node process is gone", timeout=5)
    wait_until(lambda: not dirs[0].exists(), "the deleted deployment's socket directory is gone", timeout=5)
    assert predict(gateway, "second").status_code == 200 and alive(second)
    gateway.process.send_signal(signal.SIGTERM)
    gateway.process.wait(20)
    assert not alive(second) and not dirs[1].exists()
    # A gateway that dies without stopping them (kill -9): its children notice and exit.
    crashed = start_gateway(path, state_dir=tmp_path / "state2")
    orphans = [child(crashed, name, "probe")[0] for name in ("first", "second")]
    dirs = [socket_dir(pid) for pid in orphans]
    crashed.process.send_signal(signal.SIGKILL)
    crashed.process.wait(10)
    gone = "the killed gateway's node processes and their socket directories are gone"
    wait_until(lambda: not any(map(alive, orphans)) and not any(d.exists() for d in dirs), gone, timeout=6)


def fake_python(directory: Path, version: str) -> Path:
    """An executable that answers the interpreter's version question as Python `version` would."""
    directory.mkdir(parents=True)
    path = directory / "python"
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


def test_a_node_with_a_virtualenv_of_its_own(tmp_path: Path, start_gateway: Any) -> None:
    venv = tmp_path / "model-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    (venv / "lib" / version / "site-packages" / "onlyhere.py").write_text("VALUE = 7.0\n")
    models = tmp_path / "m"
    models.mkdir()
    (models / "UsesOnlyHere.py").write_text(
        "import sys\n\nimport onlyhere\n\n\n"
        "class UsesOnlyHere:\n"
        "    def predict(self, X, features_names=None):\n"
        "        return [[onlyhere.VALUE]]\n\n"
        "    def tags(self):\n"
        "        return {'prefix': sys.prefix}\n"
    )
    # The gateway's own interpreter cannot import it.
    assert subprocess.run(
        [sys.executable, "-c", "import onlyhere"], cwd=models, capture_output=True
    ).returncode
    classes = {"m": "UsesOnlyHere"}
    wrong = fake_python(tmp_path / "py-other" / "bin", "3.5")
    docs = [
        sdep("own-venv", node("m"), classes, **{"seldon.io/python": str(venv / "bin" / "python")}),
        sdep("gateway-venv", node("m"), classes, **{"seldon.io/execution": "process"}),
        sdep("no-python", node("m"), classes, **{"seldon.io/python": "/nonexistent/venv/bin/python"}),
        sdep("other-python", node("m"), classes, **{"seldon.io/python": str(wrong)}),
    ]
    (models / "deployments.yaml").write_text(yaml.safe_dump_all(docs))
    gateway = start_gateway(models / "deployments.yaml")

    answer = predict(gateway, "own-venv")
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["ndarray"] == [[7.0]]
    assert answer.json()["meta"]["tags"] == {"prefix": str(venv)}
    assert RUNS.match(runs(gateway, "own-venv")["m"])
    assert runs(gateway, "own-venv")["m"].endswith(f", UsesOnlyHere, python {venv / 'bin' / 'python'}")

    failed = status(gateway, "gateway-venv")
    assert failed["state"] == "Failed" and "onlyhere" in failed["description"], failed
    failed = status(gateway, "no-python")
    assert failed["state"] == "Failed", failed
    assert failed["description"] == "node 'm': seldon.io/python /nonexistent/venv/bin/python does not exist"
    failed = status(gateway, "other-python")
    assert failed["state"] == "Failed", failed
    assert failed["description"] == (
        f"node 'm': seldon.io/python {wrong} is Python 3.5 but the gateway runs Python "
        f"{sys.version_info[0]}.{sys.version_info[1]}: a node's interpreter must be the same minor "
        "version (the packages it shares with the gateway include binary wheels built for it)"
    )


def test_the_microservice_serves_rest_on_a_unix_socket_and_nothing_else(tmp_path: Path) -> None:
    shutil.copy(MODELS / "ProcessProbe.py", tmp_path)
    path = tmp_path / "node.sock"
    ports = [free_port(), free_port()]
    argv = [seldon_bin(), "microservice", "ProcessProbe", "--uds", str(path), "--parameters",
            '[{"name": "scale", "value": "2", "type": "FLOAT"}]',
            "--http-port", str(ports[0]), "--grpc-port", str(ports[1]), "--host", "127.0.0.1"]  # fmt: skip
    with running(argv, cwd=tmp_path), httpx.Client(transport=httpx.HTTPTransport(uds=str(path))) as client:

        def ping() -> bool:
            try:
                return client.get("http://node/health/ping", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ping, "the microservice answers on its socket", timeout=30)
        answer = client.post("http://node/predict", json=X, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["ndarray"] == [[2.0, 4.0]]
        assert path.stat().st_mode & 0o077 == 0  # only its user may call it
        for port in ports:  # --uds: no TCP port, no gRPC
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert not path.exists()  # removed when it stopped


def test_typed_parameters_go_back_to_seldons_list_unchanged() -> None:
    typed = {"count": 3, "ratio": 0.1, "flag": False, "name": "x y", "number_text": "2", "big": 1e300}
    again = parse_parameters(json.dumps(seldon_parameters(typed)))
    assert {k: (type(v), v) for k, v in again.items()} == {k: (type(v), v) for k, v in typed.items()}


def test_the_process_nodes_of_a_graph_start_together(tmp_path: Path, start_gateway: Any) -> None:
    # Each child spends its start importing (a framework, the user's module): a graph of three
    # must not wait for them one after another. Their load() windows overlap only if they do not.
    records = tmp_path / "loads"
    records.mkdir()
    chain = node("a", node("b", node("c", record_dir=str(records)), record_dir=str(records)),
                 record_dir=str(records))  # fmt: skip
    doc = sdep("together", chain, {"a": "SlowLoad", "b": "SlowLoad", "c": "SlowLoad"},
               **{"seldon.io/execution": "process"})  # fmt: skip
    gateway = start_gateway(write(tmp_path / "m", [doc], "SlowLoad"))
    answer = predict(gateway, "together")
    assert answer.status_code == 200, answer.text
    loads = [json.loads(p.read_text()) for p in records.glob("*.json")]
    assert len(loads) == 3, loads
    assert max(r["start"] for r in loads) < min(r["end"] for r in loads), loads
