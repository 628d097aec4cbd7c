"""Model servers in `seldon serve` graphs, over real ports: a saved model named by `modelUri`
answers exactly what its framework answers, over REST and gRPC, in a process of its own (the
default) and inline; A/B tests between models; custom servers registered on the command line;
and every model that cannot be served is refused at apply time with one sentence naming the
node and the URI, while the other deployments keep serving."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import yaml

from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol._pb import prediction_pb2_grpc as pb_grpc
from tests.deploy.gateway import Gateway, gateway
from tests.s3_server import S3Server
from tests.trained_models import TrainedModel, save_lightgbm, save_sklearn_forest, save_sklearn_logistic

pytestmark = pytest.mark.slow

TOLERANCE = 1e-9
ROWS = 5  # held-out rows per request

# A model server of the user's, registered with `--server SCALED_SERVER=scaled_server:ScaledServer`:
# its module lives beside the manifests, as a MODEL_NAME class's would.
SCALED_SERVER = """
import json
from pathlib import Path


class ScaledServer:
    def __init__(self, model_uri, factor=1.0):
        self.model_uri = model_uri
        self.factor = factor
        self.class_names = ["scaled"]

    def load(self):
        self.weight = json.loads((Path(self.model_uri) / "weight.json").read_text())["weight"]

    def predict(self, X, features_names=None):
        return X.sum(axis=1, keepdims=True) * self.weight * self.factor
"""


def server_node(name: str, implementation: str, uri: str, **params: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"name": name, "implementation": implementation, "modelUri": uri}
    if params:
        kinds = {float: "FLOAT", int: "INT", str: "STRING"}
        node["parameters"] = [{"name": k, "value": str(v), "type": kinds[type(v)]} for k, v in params.items()]
    return node


def manifest(
    name: str,
    graph: dict[str, Any],
    *,
    execution: str | None = None,
    containers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A Seldon 1.x SeldonDeployment (v1, no componentSpecs unless `containers`)."""
    predictor: dict[str, Any] = {"name": "default", "replicas": 1, "graph": graph}
    if containers is not None:
        predictor["componentSpecs"] = [{"spec": {"containers": containers}}]
    spec: dict[str, Any] = {"predictors": [predictor]}
    if execution:
        spec["annotations"] = {"seldon.io/execution": execution}
    return {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": name},
        "spec": spec,
    }


@dataclass
class Served:
    gateway: Gateway
    root: Path  # the manifests' directory
    lr: TrainedModel  # sklearn LogisticRegression, at models/lr (relative to the manifests)
    forest: TrainedModel  # sklearn RandomForest, on the claim "store" (pvc://store/forest)
    lgbm: TrainedModel  # LightGBM, by absolute path
    s3: S3Server  # holds the LogisticRegression at s3://models/lr


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("s3"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, s3: S3Server) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("manifests")
    claims = tmp_path_factory.mktemp("claims")
    lr = save_sklearn_logistic(root / "models" / "lr")
    s3.put_tree("models", {"lr/model.joblib": (lr.directory / "model.joblib").read_bytes()})
    forest = save_sklearn_forest(claims / "store" / "forest", n_estimators=10, max_depth=2)
    lgbm = save_lightgbm(tmp_path_factory.mktemp("lgbm") / "model")
    (root / "scaled_server.py").write_text(SCALED_SERVER)
    (root / "models" / "scaled").mkdir()
    (root / "models" / "scaled" / "weight.json").write_text('{"weight": 2.5}')
    config = root / "servers.yaml"
    # A server whose framework is not installed here (its module is never imported).
    config.write_text(
        yaml.safe_dump(
            {
                "TORCH_SERVER": {
                    "class": "torch_serving:TorchServer",
                    "requires": ["no_such_framework"],
                    "extra": "torch",
                }
            }
        )
    )
    ab = {
        "name": "ab",
        "implementation": "RANDOM_ABTEST",
        "parameters": [{"name": "ratioA", "value": "0.5", "type": "FLOAT"}],
        "children": [
            server_node("lr", "SKLEARN_SERVER", "models/lr"),
            server_node("forest", "SKLEARN_SERVER", "pvc://store/forest"),
        ],
    }
    manifests = {
        "sk-lr": manifest("sk-lr", server_node("clf", "SKLEARN_SERVER", "models/lr")),
        "sk-inline": manifest(
            "sk-inline", server_node("clf", "SKLEARN_SERVER", "models/lr"), execution="inline"
        ),
        "sk-s3": manifest(
            "sk-s3", server_node("clf", "SKLEARN_SERVER", "s3://models/lr"), execution="inline"
        ),
        "sk-predict": manifest(
            "sk-predict",
            server_node("clf", "SKLEARN_SERVER", "models/lr", method="predict"),
            execution="inline",
        ),
        "lgbm": manifest("lgbm", server_node("booster", "LIGHTGBM_SERVER", f"file://{lgbm.directory}")),
        "ab": manifest("ab", ab, execution="inline"),
        "scaled": manifest(
            "scaled", server_node("s", "SCALED_SERVER", "models/scaled", factor=2.0), execution="inline"
        ),
        # Seldon's form for a server's resources and env: a container named like the node, no image.
        "sk-env": manifest(
            "sk-env",
            server_node("clf", "SKLEARN_SERVER", "models/lr"),
            execution="inline",
            containers=[{"name": "clf", "env": [{"name": "OMP_NUM_THREADS", "value": "1"}]}],
        ),
    }
    for name, doc in manifests.items():
        (root / f"{name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    args = [
        "--server", "SCALED_SERVER=scaled_server:ScaledServer",
        "--server-config", str(config),
        "--pvc-root", str(claims),
        "--model-cache", str(tmp_path_factory.mktemp("model-cache")),
    ]  # fmt: skip
    state = tmp_path_factory.mktemp("state")
    with gateway(root, state_dir=state, args=args, workers=2, timeout=120, env=s3.env()) as g:
        yield Served(g, root, lr, forest, lgbm, s3)


# --- calls -------------------------------------------------------------------------------------


def rest(g: Gateway, name: str, rows: np.ndarray, form: str = "ndarray") -> dict[str, Any]:
    data: dict[str, Any] = (
        {"ndarray": rows.tolist()}
        if form == "ndarray"
        else {"tensor": {"shape": list(rows.shape), "values": rows.ravel().tolist()}}
    )
    r = httpx.post(f"{g.url}/seldon/{name}/api/v1.0/predictions", json={"data": data}, timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def grpc_predict(g: Gateway, name: str, rows: np.ndarray, form: str = "tensor") -> pb.SeldonMessage:
    request = pb.SeldonMessage()
    if form == "tensor":
        request.data.tensor.shape.extend(rows.shape)
        request.data.tensor.values.extend(rows.ravel().tolist())
    else:
        for row in rows.tolist():
            request.data.ndarray.values.add().list_value.extend(row)
    with grpc.insecure_channel(g.grpc) as channel:
        return pb_grpc.SeldonStub(channel).Predict(request, metadata=[("seldon", name)], timeout=30)


def answer_of(body: dict[str, Any]) -> np.ndarray:
    data = body["data"]
    if "tensor" in data:
        return np.asarray(data["tensor"]["values"]).reshape(data["tensor"]["shape"])
    return np.asarray(data["ndarray"])


def grpc_answer(message: pb.SeldonMessage) -> np.ndarray:
    data = message.data
    if data.WhichOneof("data_oneof") == "tensor":
        return np.asarray(data.tensor.values).reshape(list(data.tensor.shape))
    return np.asarray([[v.number_value for v in row.list_value.values] for row in data.ndarray.values])


def status(g: Gateway, name: str) -> dict[str, Any]:
    item = httpx.get(f"{g.admin_url}/admin/deployments/default/{name}", timeout=10).json()
    return dict(item["manifest"]["status"])


def assert_same(served: np.ndarray, framework: np.ndarray) -> None:
    assert served.shape == framework.shape
    np.testing.assert_allclose(served, framework, rtol=0, atol=TOLERANCE)


# --- answers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sk-lr", "sk-inline", "sk-env", "sk-s3"])
def test_sklearn_answers_what_predict_proba_answers_over_rest_and_grpc(served: Served, name: str) -> None:
    rows = served.lr.rows[:ROWS]
    expected = served.lr.framework_answer(rows)  # predict_proba, Seldon's default method
    for form in ("ndarray", "tensor"):
        body = rest(served.gateway, name, rows, form)
        assert form in body["data"]
        assert_same(answer_of(body), expected)
        assert body["data"]["names"] == ["0", "1", "2"]  # the model's classes_
        assert body["meta"]["requestPath"] == {"clf": "SKLEARN_SERVER"}
        assert_same(grpc_answer(grpc_predict(served.gateway, name, rows, form)), expected)


def test_the_method_parameter_picks_predict(served: Served) -> None:
    rows = served.lr.rows[:ROWS]
    body = rest(served.gateway, "sk-predict", rows)
    assert_same(answer_of(body).ravel(), served.lr.framework_answer(rows, method="predict").astype(float))


def test_lightgbm_in_its_own_process_answers_what_the_booster_answers(served: Served) -> None:
    rows = served.lgbm.rows[:ROWS]
    expected = served.lgbm.framework_answer(rows)
    for form in ("ndarray", "tensor"):
        assert_same(answer_of(rest(served.gateway, "lgbm", rows, form)), expected)
        assert_same(grpc_answer(grpc_predict(served.gateway, "lgbm", rows, form)), expected)


def test_an_ab_test_between_two_models_answers_with_the_branch_it_chose(served: Served) -> None:
    rows = served.lr.rows[:ROWS]
    by_branch = {0: served.lr.framework_answer(rows), 1: served.forest.framework_answer(rows)}
    seen = set()
    for _ in range(30):
        body = rest(served.gateway, "ab", rows)
        branch = body["meta"]["routing"]["ab"]
        seen.add(branch)
        assert_same(answer_of(body), by_branch[branch])
    assert seen == {0, 1}
    assert not np.allclose(by_branch[0], by_branch[1])  # the test tells the two models apart


def test_a_registered_server_serves_in_every_worker(served: Served) -> None:
    rows = np.array([[1.0, 2.0, 3.0]])
    for _ in range(20):  # two workers: each one built it with the registry it inherited
        body = rest(served.gateway, "scaled", rows)
        assert body["data"]["names"] == ["scaled"]
        assert body["data"]["ndarray"] == [[6.0 * 2.5 * 2.0]]


def test_an_s3_model_is_downloaded_once_for_every_worker(served: Served) -> None:
    # Two workers built sk-s3 (and a failed apply may have asked for another bucket): the
    # model's file was fetched from the bucket once.
    assert served.s3.object_downloads("models") == ["lr/model.joblib"]


def test_get_wide_names_the_server_and_its_model(served: Served) -> None:
    out = served.gateway.cli("get", "-o", "wide").stdout
    line = next(line for line in out.splitlines() if line.startswith("sk-lr "))
    assert "Available" in line and "clf=process" in line and "SKLEARN_SERVER models/lr" in line
    line = next(line for line in out.splitlines() if line.startswith("ab "))
    assert "SKLEARN_SERVER pvc://store/forest" in line


# --- what cannot be served is refused at apply time -----------------------------------------------


def test_a_model_that_cannot_be_served_fails_its_apply_with_one_sentence(
    served: Served, tmp_path: Path
) -> None:
    g = served.gateway
    bad_dir = served.root / "bad"
    (bad_dir / "text").mkdir(parents=True)
    (bad_dir / "text" / "model.joblib").write_text("this is not a pickle")
    (bad_dir / "truncated").mkdir()
    whole = (served.lr.directory / "model.joblib").read_bytes()
    (bad_dir / "truncated" / "model.joblib").write_bytes(whole[: len(whole) // 2])
    (bad_dir / "empty").mkdir()
    cases = {
        "wrong-path": ("models/nowhere", "does not exist"),
        "wrong-format": ("bad/text", "bad/text"),
        "truncated": ("bad/truncated", "bad/truncated"),
        "no-model-file": ("bad/empty", "bad/empty"),
        "no-bucket": ("s3://no-such-bucket/lr", "no-such-bucket"),
    }
    for name, (uri, words) in cases.items():
        for execution in ("process", "inline"):
            deployment = f"{name}-{execution}"
            doc = manifest(deployment, server_node("clf", "SKLEARN_SERVER", uri), execution=execution)
            path = served.root / f"{deployment}.json"
            path.write_text(json.dumps(doc))
            done = g.cli("apply", "-f", str(path))
            assert done.returncode == 1, done
            (line,) = [line for line in done.stderr.splitlines() if line.strip()]
            assert line.startswith(f"error: seldondeployment/{deployment} failed: node 'clf'"), line
            assert f"modelUri '{uri}'" in line and words in line, line
            assert "Traceback" not in done.stderr and "\n" not in status(g, deployment)["description"]
            assert status(g, deployment)["state"] == "Failed"
            r = httpx.post(
                f"{g.url}/seldon/{deployment}/api/v1.0/predictions", json={"data": {"ndarray": [[1]]}}
            )
            assert r.status_code >= 400
    # Meanwhile, and after, the others serve.
    assert_same(
        answer_of(rest(g, "sk-lr", served.lr.rows[:2])), served.lr.framework_answer(served.lr.rows[:2])
    )


def test_a_missing_framework_is_refused_before_it_is_stored_with_the_pip_command(served: Served) -> None:
    g = served.gateway
    doc = manifest("torch", server_node("net", "TORCH_SERVER", "models/lr"))
    # The admin API, as `seldon apply` calls it (the apply command itself does not know TORCH_SERVER).
    r = httpx.put(
        f"{g.admin_url}/admin/deployments", json={"manifest": doc, "base_dir": str(served.root)}, timeout=30
    )
    assert r.status_code == 400
    info = r.json()["status"]["info"]
    assert (
        "node 'net'" in info and "no_such_framework" in info and "pip install 'seldon-serving[torch]'" in info
    )
    assert httpx.get(f"{g.admin_url}/admin/deployments/default/torch", timeout=10).status_code == 404
    assert rest(g, "scaled", np.array([[1.0]]))["data"]["ndarray"] == [[5.0]]


def test_a_reapply_with_a_broken_model_keeps_the_previous_generation_serving(served: Served) -> None:
    g = served.gateway
    rows = served.lr.rows[:ROWS]
    broken_dir = served.root / "bad" / "half"
    broken_dir.mkdir(parents=True, exist_ok=True)
    whole = (served.lr.directory / "model.joblib").read_bytes()
    (broken_dir / "model.joblib").write_bytes(whole[:100])
    doc = manifest("sk-lr", server_node("clf", "SKLEARN_SERVER", "bad/half"))
    path = served.root / "sk-lr-broken.json"
    path.write_text(json.dumps(doc))
    try:
        done = g.cli("apply", "-f", str(path))
        assert done.returncode == 1 and "modelUri 'bad/half'" in done.stderr, done
        current = status(g, "sk-lr")
        assert current["state"] == "Failed"
        assert "the previous one keeps serving" in current["description"]
        assert_same(answer_of(rest(g, "sk-lr", rows)), served.lr.framework_answer(rows))
    finally:
        path.unlink()
        shutil.rmtree(broken_dir)
        restored = g.cli("apply", "-f", str(served.root / "sk-lr.yaml"))
        assert restored.returncode == 0, restored


# --- seldon validate ---------------------------------------------------------------------------------


def test_validate_knows_registered_servers_and_needs_no_framework_nor_model(tmp_path: Path) -> None:
    from tests.helpers import seldon_bin

    def validate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [seldon_bin(), "validate", str(tmp_path / "torch.yaml"), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    doc = manifest("torch", server_node("net", "TORCH_SERVER", "s3://no-such-bucket/net"))
    (tmp_path / "torch.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "torch_serving.py").write_text("class TorchServer:\n    pass\n")
    unknown = validate()
    assert unknown.returncode == 1 and "'TORCH_SERVER' is not one of" in unknown.stderr
    config = tmp_path / "servers.yaml"
    config.write_text(
        yaml.safe_dump({"TORCH_SERVER": {"class": "torch_serving:TorchServer", "requires": ["nope"]}})
    )
    # The framework is missing and the bucket does not exist: neither is validate's business.
    ok = validate("--server-config", str(config))
    assert ok.returncode == 0 and ok.stdout.strip().endswith("seldondeployment/torch"), ok
    moved = validate("--server", "TORCH_SERVER=elsewhere:TorchServer")
    assert moved.returncode == 1
    assert moved.stderr.strip() == (
        f"error: {tmp_path / 'torch.yaml'}: spec.predictors[0].graph: server TORCH_SERVER "
        f"(elsewhere:TorchServer): no module named 'elsewhere' (looked in {tmp_path})"
    )
    bad = validate("--server", "torch")
    assert bad.returncode == 1 and bad.stderr.strip() == "error: --server 'torch' is not NAME=module:Class"


def test_seldon_apply_with_the_gateways_server_config_sends_a_registered_server_and_shows_the_refusal(
    served: Served, tmp_path: Path
) -> None:
    # Without the config the client cannot know TORCH_SERVER; with it, the manifest reaches the
    # gateway, which refuses it for the framework it lacks, in one sentence, and stores nothing.
    g = served.gateway
    path = tmp_path / "torch.yaml"
    path.write_text(yaml.safe_dump(manifest("torch-cli", server_node("net", "TORCH_SERVER", "models/lr"))))
    unknown = g.cli("apply", "-f", str(path))
    assert unknown.returncode != 0 and "TORCH_SERVER" in unknown.stderr, unknown.stderr
    known = g.cli("apply", "-f", str(path), "--server-config", str(served.root / "servers.yaml"))
    assert known.returncode != 0, known.stdout
    assert "pip install 'seldon-serving[torch]'" in known.stderr and "Traceback" not in known.stderr
    assert len(known.stderr.strip().splitlines()) == 1, known.stderr
    assert httpx.get(f"{g.admin_url}/admin/deployments/default/torch-cli", timeout=10).status_code == 404
