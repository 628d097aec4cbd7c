#!/usr/bin/env python3
"""The kubeflow-seldon example on one machine: train -> serve -> A/B test -> bandit.

Trains three classifiers of clearly different quality on scikit-learn's handwritten digits,
saves each as a model directory, serves them with SKLEARN_SERVER through `seldon serve`, A/B
tests two of them, and lets an epsilon-greedy bandit learn from feedback (reward 1 for a
correct digit, 0 otherwise) which model answers best.

    python examples/kubeflow-seldon/run.py [--out DIR] [--requests N] [--small] [--port PORT]

It uses only what a user of Seldon Serving has: the `seldon` command and the HTTP API
(standard library `urllib`), so it needs our package, scikit-learn and matplotlib (the plot).
Exit status 0 only if, over the last third of the bandit's requests, the most accurate model
served at least 70% of the traffic.  README.md next to this file says more.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import click
import numpy as np

HERE = Path(__file__).resolve().parent

# The claim the models live on: on a cluster a PersistentVolumeClaim the training job wrote
# them to (as in Kubeflow's example-seldon); here a directory, `seldon serve --pvc-root`.
CLAIM = "kubeflow-seldon-models"

SINGLE = "digits-classifier"
ABTEST = "digits-abtest"
BANDIT = "digits-bandit"
AB_ROUTER = "ab-test"
BANDIT_ROUTER = "eg-router"
AB_MODELS = ("logistic", "forest")  # child 0 (A), child 1 (B)
BANDIT_MODELS = ("tree", "forest", "logistic")
RATIO_A = 0.5
TARGET_SHARE = 0.70  # what the best model must get over the last third of the bandit's requests

# Calls to this machine never go through a proxy the environment names.
LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ExampleError(Exception):
    """A step failed; the message is one sentence saying which and why."""


# ---------------------------------------------------------------------------------------------
# 1. Training


@dataclass
class Trained:
    name: str
    description: str
    model: Any
    accuracy: float
    directory: Path


@dataclass
class Data:
    X_test: np.ndarray
    y_test: np.ndarray
    n_train: int


def candidates() -> list[tuple[str, str, Callable[[], Any]]]:
    """Three classifiers of clearly different quality (about 0.48, 0.76 and 0.97 accuracy)."""
    try:
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.tree import DecisionTreeClassifier
    except ImportError:
        raise ExampleError("scikit-learn is not installed: pip install 'seldon-serving[sklearn]'") from None
    return [
        (
            "tree",
            "DecisionTreeClassifier(max_depth=3)",
            lambda: DecisionTreeClassifier(max_depth=3, random_state=0),
        ),
        (
            "forest",
            "RandomForestClassifier(n_estimators=5, max_depth=4)",
            lambda: RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0),
        ),
        (
            "logistic",
            "StandardScaler + LogisticRegression",
            lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        ),
    ]


def train(models_root: Path) -> tuple[dict[str, Trained], Data]:
    """Fit every candidate on 70% of the digits and save it as `<claim>/<name>/model.joblib`."""
    builders = candidates()
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)  # 1,797 8x8 images shipped with scikit-learn: no download
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    trained: dict[str, Trained] = {}
    with bar(builders, "Training the models", show=lambda c: c[0] if c else "") as steps:
        for name, description, build in steps:
            model = build().fit(X_train, y_train)
            directory = models_root / CLAIM / name
            directory.mkdir(parents=True, exist_ok=True)
            joblib.dump(model, directory / "model.joblib")
            accuracy = float(np.mean(model.predict(X_test) == y_test))
            trained[name] = Trained(name, description, model, accuracy, directory)
    return trained, Data(X_test, y_test, len(X_train))


# ---------------------------------------------------------------------------------------------
# 2. Manifests

HEADER = """\
# Written by examples/kubeflow-seldon/run.py.  The models are on the claim {claim}:
# locally `seldon serve --pvc-root {root}`
# reads pvc://{claim}/NAME from {root}/{claim}/NAME;
# on a cluster the claim is mounted (`seldon k8s render` shows how).
"""


def model_node(name: str, indent: str, method: str | None = None) -> str:
    """A graph node served by SKLEARN_SERVER from the claim (Seldon 1.x's form)."""
    lines = [
        f"- name: {name}",
        "  type: MODEL",
        "  implementation: SKLEARN_SERVER",
        f"  modelUri: pvc://{CLAIM}/{name}",
    ]
    if method:
        lines += ["  parameters:", "  - name: method", "    type: STRING", f"    value: {method}"]
    return "".join(f"{indent}{line}\n" for line in lines)


def single_manifest(model: str) -> str:
    return f"""\
apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata:
  name: {SINGLE}
spec:
  predictors:
  - name: default
    replicas: 1
    graph:
      name: classifier
      type: MODEL
      implementation: SKLEARN_SERVER
      modelUri: pvc://{CLAIM}/{model}
      parameters:
      - name: method  # SKLEARN_SERVER's default: one probability per class
        type: STRING
        value: predict_proba
"""


def abtest_manifest() -> str:
    children = "".join(model_node(m, "      ") for m in AB_MODELS)
    return f"""\
apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata:
  name: {ABTEST}
spec:
  predictors:
  - name: default
    replicas: 1
    graph:
      name: {AB_ROUTER}
      implementation: RANDOM_ABTEST
      parameters:
      - name: ratioA  # the share of requests sent to the first child ({AB_MODELS[0]})
        type: FLOAT
        value: "{RATIO_A}"
      children:
{children}"""


def bandit_manifest(epsilon: float) -> str:
    children = "".join(model_node(m, "      ") for m in BANDIT_MODELS)
    return f"""\
apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata:
  name: {BANDIT}
spec:
  predictors:
  - name: default
    replicas: 1
    componentSpecs:
    - spec:
        containers:
        - name: {BANDIT_ROUTER}
          image: seldonio/mab_epsilon_greedy:1.1
    graph:
      name: {BANDIT_ROUTER}
      type: ROUTER
      parameters:
      - name: n_branches
        type: INT
        value: "{len(BANDIT_MODELS)}"
      - name: epsilon  # the share of requests spent exploring the other branches
        type: FLOAT
        value: "{epsilon}"
      - name: branch_names  # how `seldon get {BANDIT} -o wide` names the branches
        type: STRING
        value: {":".join(BANDIT_MODELS)}
      children:
{children}"""


def write_manifests(directory: Path, models_root: Path, best: str, epsilon: float) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    header = HEADER.format(claim=CLAIM, root=models_root)
    texts = {
        SINGLE: single_manifest(best),
        ABTEST: abtest_manifest(),
        BANDIT: bandit_manifest(epsilon),
    }
    paths = []
    with bar(
        list(texts.items()), "Writing the manifests", show=lambda t: f"{t[0]}.yaml" if t else ""
    ) as items:
        for name, text in items:
            path = directory / f"{name}.yaml"
            path.write_text(header + text)
            paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------
# 3. The gateway: `seldon serve` as a subprocess


def seldon_command() -> list[str]:
    """The `seldon` of this interpreter's environment, else the one on PATH, else `python -m`."""
    beside = Path(sys.executable).parent / "seldon"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("seldon")
    return [found] if found else [sys.executable, "-m", "seldon_serving"]


def free_ports(count: int) -> list[int]:
    """`count` distinct ports nothing listens on (held together while picked, so none repeats)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


class LocalGateway:
    """`seldon serve` on 127.0.0.1 with the example's manifests; always stopped (`stop`)."""

    def __init__(self, manifests: Path, models_root: Path, port: int, log_path: Path) -> None:
        self.manifests = manifests
        self.models_root = models_root
        picked = [p for p in free_ports(4) if p != port]
        self.port = port or picked.pop()
        self.grpc_port, self.admin_port = picked[:2]
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{self.port}"
        # `seldon get` asks the admin port (bound to 127.0.0.1 by `seldon serve`).
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        self.process: subprocess.Popen[bytes] | None = None
        # A fresh state directory: the bandit must start from nothing on every run.
        self.state_dir = Path(tempfile.mkdtemp(prefix="kubeflow-seldon-state-"))

    def start(self) -> None:
        argv = [
            *seldon_command(),
            "serve",
            str(self.manifests),
            "--host",
            "127.0.0.1",
            "--http-port",
            str(self.port),
            "--grpc-port",
            str(self.grpc_port),
            "--admin-port",
            str(self.admin_port),
            "--state-dir",
            str(self.state_dir),
            "--pvc-root",
            str(self.models_root),
            "--log-level",
            "WARNING",
        ]
        with self.log_path.open("wb") as log:
            # A session of its own: Ctrl-C in the terminal reaches only us, and we stop the
            # server and all its workers and model processes together.
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, names: Sequence[str], timeout: float = 120.0) -> None:
        """Wait until every deployment in `names` is Available.

        The gateway's /ready (one cheap HTTP call) says when nothing is starting or failed;
        only then is `seldon get` asked (a command of its own, which costs CPU the starting
        model servers need)."""
        started = time.monotonic()
        done = 0
        # The item shown beside the bar: how long we have waited.
        with bar(None, "Starting seldon serve", show=str, length=len(names)) as progress:
            while True:
                self._check_alive()
                ready, why = self._ready()
                if why.startswith("Service unavailable") and " failed: " in why:
                    raise ExampleError(why.removeprefix("Service unavailable: "))
                states = self._states() if ready else {}
                available = sum(1 for n in names if states.get(n, ("",))[0] == "Available")
                progress.update(available - done, f"{time.monotonic() - started:.0f} s")
                done = available
                for name, (state, reason) in states.items():
                    if state == "Failed":
                        raise ExampleError(f"deployment {name} failed to start: {reason or 'see the log'}")
                if done == len(names):
                    return
                if time.monotonic() - started > timeout:
                    waiting = [n for n in names if states.get(n, ("",))[0] != "Available"]
                    raise ExampleError(
                        f"seldon serve did not make {', '.join(waiting)} Available within {timeout:.0f} s "
                        f"(see {self.log_path})"
                    )
                time.sleep(1.0 if ready else 0.2)

    def _ready(self) -> tuple[bool, str]:
        """(ready, what /ready said); (False, "") until the gateway answers at all."""
        try:
            with LOOPBACK.open(f"{self.url}/ready", timeout=5) as answer:
                return True, answer.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            return False, error.read().decode(errors="replace")
        except (OSError, urllib.error.URLError):
            return False, ""

    def _check_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            lines = self.log_path.read_text(errors="replace").splitlines()
            tail = [line.strip() for line in lines if line.strip()][-3:]
            raise ExampleError(
                f"seldon serve exited with status {self.process.returncode}: " + " / ".join(tail)
            )

    def _states(self) -> dict[str, tuple[str, str]]:
        """Each deployment's (state, description), as `seldon get -o json` prints them."""
        done = seldon_cli("get", "-o", "json", "--server", self.admin_url)
        if done.returncode != 0:
            return {}
        states = {}
        for item in json.loads(done.stdout).get("items") or []:
            status = item.get("status") or {}
            states[item["metadata"]["name"]] = (
                status.get("state", "Creating"),
                status.get("description", ""),
            )
        return states

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # any straggler of its process group
        shutil.rmtree(self.state_dir, ignore_errors=True)


def seldon_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*seldon_command(), *args], capture_output=True, text=True, timeout=60)


def router_state(admin_url: str, deployment: str, router: str) -> dict[str, Any] | None:
    """What a router node has learnt, as `seldon get NAME -o json` shows it in the status."""
    done = seldon_cli("get", deployment, "-o", "json", "--server", admin_url)
    if done.returncode != 0:
        return None
    status = json.loads(done.stdout).get("status") or {}
    for predictor in status.get("predictorStatus") or []:
        for node in predictor.get("nodes") or []:
            if node.get("name") == router and isinstance(node.get("state"), dict):
                return dict(node["state"])
    return None


# ---------------------------------------------------------------------------------------------
# 4-5. Calling the deployments (Seldon's external API, as any client would)


class Api:
    """POST JSON to /seldon/<deployment>/api/v0.1/{predictions,feedback} of a gateway."""

    def __init__(self, base_url: str, namespace: str | None = None) -> None:
        self.base = base_url.rstrip("/")
        self.namespace = namespace
        host = urllib.parse.urlsplit(self.base).hostname or ""
        local = host in ("127.0.0.1", "localhost", "::1")
        self.opener = LOOPBACK if local else urllib.request.build_opener()

    def url(self, deployment: str, what: str) -> str:
        where = f"{self.namespace}/{deployment}" if self.namespace else deployment
        return f"{self.base}/seldon/{where}/api/v0.1/{what}"

    def post(self, deployment: str, what: str, body: dict[str, Any]) -> dict[str, Any]:
        url = self.url(deployment, what)
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with self.opener.open(request, timeout=30) as answer:
                return dict(json.loads(answer.read()))
        except urllib.error.HTTPError as error:
            raise ExampleError(f"POST {url} answered {error.code}: {_status_info(error.read())}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ExampleError(f"POST {url} failed: {reason}") from None

    def predict(self, deployment: str, row: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
        """(request, answer) for one image: 64 pixel values, one ndarray row."""
        request = {"data": {"ndarray": [row.tolist()]}}
        return request, self.post(deployment, "predictions", request)

    def feedback(
        self, deployment: str, request: dict[str, Any], answer: dict[str, Any], reward: float
    ) -> None:
        # The answer goes back whole: its meta.routing tells the router which branch served it.
        self.post(deployment, "feedback", {"request": request, "response": answer, "reward": reward})


def _status_info(body: bytes) -> str:
    try:
        status = json.loads(body).get("status") or {}
        return str(status.get("info") or status.get("reason") or body[:200].decode(errors="replace"))
    except (ValueError, AttributeError):
        return body[:200].decode(errors="replace").strip() or "no body"


def predicted_digit(answer: dict[str, Any]) -> int:
    """The digit an answer names: the most probable class (predict_proba), or the label itself
    (method predict).  Column names, when the server gives them, are the model's classes_."""
    data = answer.get("data") or {}
    if "ndarray" in data:
        values = np.asarray(data["ndarray"], dtype=float)
    elif "tensor" in data:
        values = np.asarray(data["tensor"]["values"], dtype=float).reshape(data["tensor"]["shape"])
    else:
        raise ExampleError(f"the answer has no ndarray or tensor: {json.dumps(answer)[:200]}")
    row = values.reshape(1, -1)[0] if values.ndim <= 1 else values[0]
    if row.size == 1:
        return round(float(row[0]))
    index = int(np.argmax(row))
    names = data.get("names") or []
    with contextlib.suppress(ValueError, IndexError, TypeError):
        return int(str(names[index]).removeprefix("t:")) if len(names) == row.size else index
    return index


def branch_of(answer: dict[str, Any], router: str) -> int:
    routing = (answer.get("meta") or {}).get("routing") or {}
    if router not in routing:
        raise ExampleError(f"the answer's meta.routing does not name router {router!r}: {routing}")
    return int(routing[router])


@dataclass
class Served:
    """Which test row each request sent, which branch served it and what it answered."""

    names: Sequence[str]
    rows: list[int] = field(default_factory=list)
    branches: list[int] = field(default_factory=list)
    predicted: list[int] = field(default_factory=list)
    truth: list[int] = field(default_factory=list)

    def add(self, row: int, branch: int, predicted: int, truth: int) -> None:
        self.rows.append(row)
        self.branches.append(branch)
        self.predicted.append(predicted)
        self.truth.append(truth)

    def per_branch(self, since: int = 0) -> list[dict[str, Any]]:
        branches = np.asarray(self.branches[since:])
        correct = np.asarray(self.predicted[since:]) == np.asarray(self.truth[since:])
        out = []
        for index, name in enumerate(self.names):
            mine = branches == index
            n = int(mine.sum())
            out.append(
                {
                    "branch": index,
                    "model": name,
                    "requests": n,
                    "share": n / max(1, len(branches)),
                    "correct": int(correct[mine].sum()),
                    "accuracy": float(correct[mine].mean()) if n else None,
                }
            )
        return out

    def log(self) -> list[list[int]]:
        return [list(t) for t in zip(self.rows, self.branches, self.predicted, self.truth, strict=True)]


def rows_for(n: int, data: Data) -> list[int]:
    """The test set in order, from the start again if more requests are asked for."""
    return [i % len(data.y_test) for i in range(n)]


def run_single(api: Api, data: Data, model: Trained, n: int) -> dict[str, Any]:
    """Call the single SKLEARN_SERVER deployment; compare every answer with scikit-learn's own."""
    rows = rows_for(n, data)
    agree = correct = 0
    first_answer: dict[str, Any] = {}
    with bar(rows, f"Single model: {SINGLE}") as progress:
        for row in progress:
            _, answer = api.predict(SINGLE, data.X_test[row])
            first_answer = first_answer or answer
            digit = predicted_digit(answer)
            local = model.model.predict_proba(data.X_test[row : row + 1])[0]
            served = np.asarray((answer["data"].get("ndarray") or [[]])[0], dtype=float)
            agree += int(served.shape == local.shape and np.allclose(served, local, rtol=0, atol=1e-9))
            correct += int(digit == data.y_test[row])
    return {
        "deployment": SINGLE,
        "model": model.name,
        "requests": len(rows),
        "accuracy": correct / len(rows),
        "local_accuracy": float(np.mean(model.model.predict(data.X_test[rows]) == data.y_test[rows])),
        "same_as_scikit_learn": agree,
        "example_answer": first_answer,
    }


def run_abtest(api: Api, data: Data, n: int) -> Served:
    served = Served(AB_MODELS)
    with bar(rows_for(n, data), f"A/B test: {ABTEST}") as progress:
        for row in progress:
            _, answer = api.predict(ABTEST, data.X_test[row])
            served.add(row, branch_of(answer, AB_ROUTER), predicted_digit(answer), int(data.y_test[row]))
    return served


def run_bandit(api: Api, data: Data, n: int) -> Served:
    """One request per test row; feedback reward 1 for a correct digit, 0 otherwise."""
    served = Served(BANDIT_MODELS)
    with bar(rows_for(n, data), f"Bandit: {BANDIT}") as progress:
        for row in progress:
            request, answer = api.predict(BANDIT, data.X_test[row])
            digit, truth = predicted_digit(answer), int(data.y_test[row])
            served.add(row, branch_of(answer, BANDIT_ROUTER), digit, truth)
            api.feedback(BANDIT, request, answer, 1.0 if digit == truth else 0.0)
    return served


# ---------------------------------------------------------------------------------------------
# Output: the plot, the tables, summary.json


def rolling_shares(branches: Sequence[int], n_branches: int, window: int) -> np.ndarray:
    """shares[k, i]: the share of branch k among the `window` requests up to request i."""
    chosen = np.asarray(branches)
    shares = np.zeros((n_branches, len(chosen)))
    for k in range(n_branches):
        hits = np.cumsum(chosen == k)
        before = (
            np.concatenate([np.zeros(window), hits[:-window]]) if len(hits) > window else np.zeros(len(hits))
        )
        counts = hits - before[: len(hits)]
        sizes = np.minimum(np.arange(1, len(chosen) + 1), window)
        shares[k] = counts / sizes
    return shares


def plot_bandit(served: Served, accuracies: dict[str, float], epsilon: float, path: Path) -> Path | None:
    """The bandit's rolling traffic share per branch over the run, as a PNG (None without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        click.echo(
            "matplotlib is not installed, so there is no traffic-share plot: pip install matplotlib",
            err=True,
        )
        return None
    n = len(served.branches)
    window = max(10, n // 10)
    shares = rolling_shares(served.branches, len(served.names), window)
    x = np.arange(1, n + 1)
    fig, ax = plt.subplots(figsize=(10, 4.8), dpi=100)
    labels = [f"{name} (accuracy {accuracies[name]:.2f})" for name in served.names]
    ax.stackplot(x, shares, labels=labels, alpha=0.85)
    ax.axhline(
        1 - epsilon, color="black", linestyle="--", linewidth=1, label=f"1 - epsilon ({1 - epsilon:.2f})"
    )
    ax.axvline(n - n // 3, color="black", linestyle=":", linewidth=1, label="last third (the pass mark)")
    ax.set_xlim(1, n)
    ax.set_ylim(0, 1)
    ax.set_xlabel("request")
    ax.set_ylabel(f"traffic share (last {window} requests)")
    ax.set_title(f"{BANDIT}: epsilon-greedy traffic share per model")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def branch_table(rows: list[dict[str, Any]], extra: list[dict[str, Any]] | None = None) -> str:
    header = f"      {'model':<10}{'requests':>9}{'share':>8}{'accuracy':>10}"
    if extra is not None:
        header += f"{'share, last third':>19}"
    lines = [header]
    for i, row in enumerate(rows):
        accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.3f}"
        line = f"      {row['model']:<10}{row['requests']:>9}{row['share']:>8.1%}{accuracy:>10}"
        if extra is not None:
            line += f"{extra[i]['share']:>19.1%}"
        lines.append(line)
    return "\n".join(lines)


def router_table(state: dict[str, Any], served: Served) -> str:
    """The router's own counts beside the client's: each feedback counted once, on its branch."""
    mine = served.per_branch()
    lines = [
        f"      what {BANDIT_ROUTER} learnt (seldon get {BANDIT} -o wide): "
        f"best branch {state.get('best_branch')} ({_branch_name(state)})",
        f"      {'model':<10}{'tries':>9}{'successes':>11}{'value':>8}   client: requests, correct",
    ]
    for branch, ours in zip(state.get("branches") or [], mine, strict=False):
        name = branch.get("name") or branch["branch"]
        lines.append(
            f"      {name!s:<10}{branch['tries']:>9g}{branch['successes']:>11g}"
            f"{branch.get('value', 0.0):>8.3f}   {ours['requests']}, {ours['correct']}"
        )
    return "\n".join(lines)


def _branch_name(state: dict[str, Any]) -> str:
    for branch in state.get("branches") or []:
        if branch.get("branch") == state.get("best_branch"):
            return str(branch.get("name") or "-")
    return "-"


def shown(path: Path) -> str:
    """A path as the user would type it: relative to the current directory when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def bar(
    items: Sequence[Any] | None,
    label: str,
    show: Callable[[Any], str] | None = None,
    length: int | None = None,
) -> Any:
    """click's progress bar, the same width for every step."""
    return click.progressbar(
        items,
        length=length,
        label=f"  {label:<36}",
        show_pos=True,
        item_show_func=(lambda item: show(item) if item is not None else None) if show else None,
        width=24,
        file=sys.stdout,
    )


@contextlib.contextmanager
def step(number: int, title: str) -> Iterator[None]:
    started = time.monotonic()
    click.echo(click.style(f"[{number}/6] {title}", bold=True))
    yield
    click.echo(f"      ({time.monotonic() - started:.1f} s)")


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops us as Ctrl-C does: the finally blocks stop the server


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=HERE / "out",
    show_default="examples/kubeflow-seldon/out",
    help="Where the models, manifests, plot and summary.json go.",
)
@click.option(
    "--requests",
    "n_requests",
    type=click.IntRange(min=9),
    default=None,
    help="Requests of the A/B test and of the bandit [default: the held-out test set, 540; "
    "--small: 150 and 300].  The test set is sent again from its start if N is larger.",
)
@click.option("--small", is_flag=True, help="A short run (a few hundred requests), as CI runs it.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="REST port of seldon serve [a free one]."
)
@click.option(
    "--epsilon",
    type=click.FloatRange(0.0, 1.0),
    default=0.1,
    show_default=True,
    help="The bandit's exploration rate (parameter epsilon of seldonio/mab_epsilon_greedy).",
)
@click.option(
    "--gateway",
    default=None,
    metavar="URL",
    help="Call this gateway (e.g. a cluster's Ambassador, http://localhost:8003) instead of starting "
    "seldon serve; the manifests must be applied there already and the models on its claim.",
)
@click.option("--namespace", default=None, help="With --gateway: call /seldon/<namespace>/<name>/...")
def main(
    out: Path,
    n_requests: int | None,
    small: bool,
    port: int,
    epsilon: float,
    gateway: str | None,
    namespace: str | None,
) -> None:
    """Train three digit classifiers, serve them with SKLEARN_SERVER, A/B test two of them and let
    an epsilon-greedy bandit find the best one from feedback."""
    signal.signal(signal.SIGTERM, _terminate)
    # Ctrl-C too, even when started with SIGINT ignored (a background job of a script inherits
    # that, and Python then leaves it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        status = run(out.resolve(), n_requests, small, port, epsilon, gateway, namespace)
    except ExampleError as error:
        click.echo(f"error: {error}", err=True)
        status = 1
    except KeyboardInterrupt:
        click.echo("\ninterrupted: seldon serve stopped", err=True)
        status = 130
    sys.exit(status)


def run(
    out: Path,
    n_requests: int | None,
    small: bool,
    port: int,
    epsilon: float,
    gateway_url: str | None,
    namespace: str | None,
) -> int:
    out.mkdir(parents=True, exist_ok=True)
    models_root = out / "pvc"
    click.echo(f"kubeflow-seldon: train, serve, A/B test and bandit on scikit-learn's digits -> {shown(out)}")

    with step(1, "Train three classifiers on the handwritten digits (8x8 images, 10 classes)"):
        models, data = train(models_root)
        np.savez(out / "test_set.npz", X=data.X_test, y=data.y_test)
        click.echo(f"      {data.n_train} training images, {len(data.y_test)} held out for testing")
        for m in models.values():
            click.echo(f"      {m.name:<10}{m.description:<53}test accuracy {m.accuracy:.3f}")
        click.echo(f"      saved as {shown(models_root / CLAIM)}/<model>/model.joblib")
    best = max(models.values(), key=lambda m: m.accuracy).name

    with step(2, "Write the SeldonDeployments (SKLEARN_SERVER, RANDOM_ABTEST, epsilon-greedy)"):
        paths = write_manifests(out / "manifests", models_root, best, epsilon)
        for path in paths:
            click.echo(f"      {shown(path)}")

    local = None
    if gateway_url is None:
        local = LocalGateway(out / "manifests", models_root, port, out / "seldon-serve.log")
    try:
        with step(3, "Serve them"):
            if local is not None:
                local.start()
                local.wait_ready([SINGLE, ABTEST, BANDIT])
                url = local.url
                click.echo(f"      seldon serve {shown(out / 'manifests')} --pvc-root {shown(models_root)}")
                click.echo(f"      REST {url}, gRPC 127.0.0.1:{local.grpc_port}, log {shown(local.log_path)}")
            else:
                url = str(gateway_url)  # there is no local gateway only when one was given
                click.echo(f"      using the gateway at {url}")
            api = Api(url, namespace)

        n_bandit = n_requests or (300 if small else len(data.y_test))
        n_ab = n_requests or (150 if small else len(data.y_test))
        n_single = 50 if small else 100

        with step(4, "Call the single model, then the A/B test"):
            single = run_single(api, data, models[best], n_single)
            click.echo(
                f"      {SINGLE} ({best}): accuracy {single['accuracy']:.3f} on {single['requests']} images; "
                f"{single['same_as_scikit_learn']}/{single['requests']} answers equal scikit-learn's "
                "predict_proba (to 1e-9)"
            )
            ab = run_abtest(api, data, n_ab)
            ab_rows = ab.per_branch()
            click.echo(f"      {ABTEST}: ratioA {RATIO_A} ({AB_MODELS[0]} is A, {AB_MODELS[1]} is B)")
            click.echo(branch_table(ab_rows))

        with step(5, f"Multi-armed bandit: epsilon-greedy (epsilon {epsilon}), reward 1 for a correct digit"):
            bandit = run_bandit(api, data, n_bandit)
            last_third = len(bandit.branches) - len(bandit.branches) // 3
            bandit_rows, final_rows = bandit.per_branch(), bandit.per_branch(since=last_third)
            click.echo(branch_table(bandit_rows, final_rows))
            png = plot_bandit(
                bandit, {m: models[m].accuracy for m in BANDIT_MODELS}, epsilon, out / "bandit_traffic.png"
            )
            if png is not None:
                click.echo(f"      traffic share over time: {shown(png)}")
            router = router_state(local.admin_url, BANDIT, BANDIT_ROUTER) if local is not None else None
            if router is not None:
                click.echo(router_table(router, bandit))
    finally:
        if local is not None:
            local.stop()

    final_share = next(r["share"] for r in final_rows if r["model"] == best)
    passed = final_share >= TARGET_SHARE and single["same_as_scikit_learn"] == single["requests"]
    summary = {
        "models": {
            m.name: {
                "estimator": m.description,
                "accuracy": m.accuracy,
                "model_uri": f"pvc://{CLAIM}/{m.name}",
            }
            for m in models.values()
        },
        "best_model": best,
        "test_set": {"path": str(out / "test_set.npz"), "rows": len(data.y_test)},
        "single": {k: v for k, v in single.items() if k != "example_answer"},
        "abtest": {"deployment": ABTEST, "ratioA": RATIO_A, "branches": ab_rows, "served": ab.log()},
        "bandit": {
            "deployment": BANDIT,
            "epsilon": epsilon,
            "branches": bandit_rows,
            "last_third": final_rows,
            "final_share_best": final_share,
            "router_state": router,
            "target": TARGET_SHARE,
            # row, branch, predicted digit, true digit: one entry per request, in order
            "served": bandit.log(),
        },
        "png": str(png) if png else None,
        "manifests": [str(p) for p in paths],
        "passed": passed,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")

    with step(6, "Summary"):
        verdict = "PASS" if passed else "FAIL"
        click.echo(
            f"      {verdict}: over the last third of the bandit's requests the best model ({best}, "
            f"accuracy {models[best].accuracy:.3f}) served {final_share:.1%} of the traffic "
            f"(pass mark {TARGET_SHARE:.0%})"
        )
        if single["same_as_scikit_learn"] != single["requests"]:
            click.echo(
                f"      FAIL: {single['requests'] - single['same_as_scikit_learn']} answers of {SINGLE} "
                "differ from scikit-learn's own predict_proba"
            )
        click.echo(f"      summary: {shown(out / 'summary.json')}")
    return 0 if passed else 1


if __name__ == "__main__":
    main()
