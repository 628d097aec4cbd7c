"""Manifests Seldon Core 1.x accepts, as a new user brings them (several taken from Seldon's own
documentation): each one validates here too, serves under `seldon serve`, and renders for
Kubernetes; the forms that stay invalid are still refused with one sentence and the field."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from seldon_serving.components.servers.registry import forget_registered, register_server
from seldon_serving.spec import ManifestError, UnitType, parse_deployment, validate
from seldon_serving.spec.graph import container_for, iter_units, unit_type
from tests.deploy.gateway import Gateway, gateway
from tests.helpers import seldon_bin

LONG_NAME = "a-deployment-whose-name-says-what-it-is-for-" + "and-goes-on-" * 4 + "x" * 8
assert len(LONG_NAME) == 100


def seldon_doc(text: str) -> dict[str, Any]:
    return yaml.safe_load(text)  # type: ignore[no-any-return]


def check(doc: dict[str, Any]) -> None:
    validate(parse_deployment(doc, source="sdep.yaml"))


def refusal(doc: dict[str, Any]) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        check(doc)
    assert "\n" not in str(info.value)
    return info.value


# Seldon's "Further Customisation for Prepackaged Model Servers": a skeleton container, named
# like the node, sets the server's resources; the operator fills in the image.
SKELETON_CONTAINER = """
apiVersion: machinelearning.seldon.io/v1alpha2
kind: SeldonDeployment
metadata:
  name: sklearn-iris
spec:
  predictors:
  - componentSpecs:
    - spec:
        containers:
        - name: classifier
          resources:
            requests:
              memory: 50Mi
          env:
          - name: SELDON_LOG_LEVEL
            value: DEBUG
    name: default
    replicas: 1
    graph:
      name: classifier
      implementation: SKLEARN_SERVER
      modelUri: gs://seldon-models/v1.18.2/sklearn/iris
"""

# Seldon's sklearn server sample as written for the version Seldon 1.x stores (v1alpha3 too).
IRIS_V1ALPHA3 = """
apiVersion: machinelearning.seldon.io/v1alpha3
kind: SeldonDeployment
metadata:
  name: sklearn
spec:
  name: iris
  predictors:
  - graph:
      children: []
      implementation: SKLEARN_SERVER
      modelUri: gs://seldon-models/v1.18.2/sklearn/iris
      name: classifier
      parameters:
        - name: method
          type: STRING
          value: predict
    name: default
    replicas: 1
"""

# A custom model in Seldon 1.x's shortest form: the node names only itself.
UNTYPED = """
apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata:
  name: untyped
spec:
  predictors:
  - name: default
    componentSpecs:
    - spec:
        containers:
        - name: classifier
          image: example/classifier:0.1
          env:
          - name: MODEL_NAME
            value: Tripler
    graph:
      name: classifier
"""


def test_a_model_servers_container_may_leave_out_its_image() -> None:
    doc = seldon_doc(SKELETON_CONTAINER)
    check(doc)
    sdep = parse_deployment(doc)
    predictor = sdep.spec.predictors[0]
    # What it says is kept for the server's container.
    container = container_for(predictor, "classifier")
    assert container is not None and "image" not in container
    assert container["resources"] == {"requests": {"memory": "50Mi"}}
    assert unit_type(predictor.graph) == UnitType.MODEL


def test_an_image_less_container_no_model_server_uses_is_still_refused() -> None:
    doc = seldon_doc(SKELETON_CONTAINER)
    containers = doc["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"]
    containers.append({"name": "sidecar", "resources": {}})
    error = refusal(doc)
    assert error.path == "spec.predictors[0].componentSpecs[0].spec.containers[1].image"
    assert "container 'sidecar' has no image; give an image or an env MODEL_NAME" in str(error)
    # A built-in component is not a model server: its container needs an image too.
    doc = seldon_doc(SKELETON_CONTAINER)
    graph = doc["spec"]["predictors"][0]["graph"]
    graph.update(implementation="RANDOM_ABTEST", children=[{"name": "a"}, {"name": "b"}])
    containers = doc["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"]
    containers += [{"name": n, "image": "seldonio/mock_classifier:1.0"} for n in "ab"]
    assert "container 'classifier' has no image" in str(refusal(doc))


@pytest.mark.parametrize("version", ["v1alpha2", "v1alpha3", "v1"])
def test_every_version_seldon_1x_serves(version: str) -> None:
    doc = seldon_doc(IRIS_V1ALPHA3)
    doc["apiVersion"] = f"machinelearning.seldon.io/{version}"
    check(doc)


def test_an_untyped_node_is_a_model() -> None:
    doc = seldon_doc(UNTYPED)
    check(doc)
    graph = parse_deployment(doc).spec.predictors[0].graph
    assert graph.type is None  # the manifest reads back as written
    assert unit_type(graph) == UnitType.MODEL


def test_untyped_nodes_anywhere_in_a_graph() -> None:
    doc = seldon_doc(UNTYPED)
    predictor = doc["spec"]["predictors"][0]
    predictor["graph"] = {
        "name": "ab",
        "implementation": "RANDOM_ABTEST",
        "children": [{"name": "classifier"}, {"name": "other", "children": []}],
    }
    predictor["componentSpecs"][0]["spec"]["containers"].append(
        {"name": "other", "image": "seldonio/mock_classifier:1.0"}
    )
    check(doc)
    units = dict(iter_units(parse_deployment(doc).spec.predictors[0].graph))
    assert [unit_type(u) for u in units.values()] == [None, UnitType.MODEL, UnitType.MODEL]


def test_a_model_server_node_is_a_model_whatever_type_it_names() -> None:
    doc = seldon_doc(IRIS_V1ALPHA3)
    doc["spec"]["predictors"][0]["graph"]["type"] = "TRANSFORMER"
    check(doc)
    assert unit_type(parse_deployment(doc).spec.predictors[0].graph) == UnitType.MODEL


def test_unknown_type_written_out_is_still_refused() -> None:
    doc = seldon_doc(UNTYPED)
    doc["spec"]["predictors"][0]["graph"]["type"] = "UNKNOWN_TYPE"
    error = refusal(doc)
    assert error.path == "spec.predictors[0].graph.type"
    assert "node 'classifier' is of type UNKNOWN_TYPE with no implementation or methods" in str(error)
    # With methods it says what it does, as Seldon allows.
    doc["spec"]["predictors"][0]["graph"]["methods"] = ["TRANSFORM_INPUT"]
    check(doc)


def test_names_up_to_253_characters() -> None:
    for name in (LONG_NAME, "n" * 253):
        doc = seldon_doc(UNTYPED)
        doc["metadata"]["name"] = name
        check(doc)
    doc["metadata"]["name"] = "n" * 254
    error = refusal(doc)
    assert error.path == "metadata.name"
    assert str(error).endswith("is 254 characters long; Kubernetes takes at most 253")
    # Still one word of lowercase letters, digits and '-' (a Service name is made from it).
    for bad in ("Iris", "iris.v1", "iris_v1", "-iris"):
        doc["metadata"]["name"] = bad
        assert "use lowercase letters, digits and '-'" in str(refusal(doc))


@pytest.fixture
def registered() -> Iterator[str]:
    register_server("MY_TORCH_SERVER=my_servers.torch:TorchServer")
    try:
        yield "MY_TORCH_SERVER"
    finally:
        forget_registered()


def test_a_registered_implementation_validates(registered: str) -> None:
    doc = seldon_doc(SKELETON_CONTAINER)
    graph = doc["spec"]["predictors"][0]["graph"]
    graph.update(implementation=registered, modelUri="s3://models/torch")
    check(doc)  # its image-less container too: it is a model server
    assert unit_type(parse_deployment(doc).spec.predictors[0].graph) == UnitType.MODEL


def test_an_implementation_nobody_registered_is_refused() -> None:
    doc = seldon_doc(IRIS_V1ALPHA3)
    doc["spec"]["predictors"][0]["graph"]["implementation"] = "NOBODYS_SERVER"
    with pytest.raises(ManifestError) as info:
        parse_deployment(doc, source="sdep.yaml")
    message = str(info.value)
    where = "sdep.yaml: spec.predictors[0].graph.implementation"
    assert message.startswith(f"{where}: 'NOBODYS_SERVER' is not one of ")
    assert "SKLEARN_SERVER" in message


# --- served and rendered ------------------------------------------------------------------------

TRIPLER = """
class Tripler:
    def predict(self, X, features_names=None):
        return X * 3
"""


def _v1alpha3_with_a_class(name: str) -> dict[str, Any]:
    doc = seldon_doc(UNTYPED)
    doc["apiVersion"] = "machinelearning.seldon.io/v1alpha3"
    doc["metadata"]["name"] = name
    doc["spec"]["predictors"][0]["graph"]["type"] = "MODEL"
    return doc


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("forms")
    (root / "Tripler.py").write_text(TRIPLER)
    long = seldon_doc(UNTYPED)
    long["metadata"]["name"] = LONG_NAME
    docs = [seldon_doc(UNTYPED), long, _v1alpha3_with_a_class("alpha3")]
    (root / "forms.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    with gateway(root, state_dir=tmp_path_factory.mktemp("state")) as g:
        yield g


@pytest.mark.slow
@pytest.mark.parametrize("name", ["untyped", LONG_NAME, "alpha3"])
def test_each_form_serves(served: Gateway, name: str) -> None:
    for path in (f"/seldon/{name}/api/v1.0/predictions", f"/seldon/default/{name}/api/v1.0/predictions"):
        answer = httpx.post(served.url + path, json={"data": {"ndarray": [[1.0, 2.5]]}}, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["ndarray"] == [[3.0, 7.5]]
    listed = served.cli("get", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert name in listed.stdout


def test_k8s_render_of_a_100_character_name(tmp_path: Path) -> None:
    doc = seldon_doc(UNTYPED)
    doc["metadata"]["name"] = LONG_NAME
    predictor = doc["spec"]["predictors"][0]
    canary = copy.deepcopy(predictor)
    canary["name"] = "canary"
    predictor["traffic"], canary["traffic"] = 75, 25
    doc["spec"]["predictors"].append(canary)
    (tmp_path / "long.yaml").write_text(yaml.safe_dump(doc))
    result = subprocess.run(
        [seldon_bin(), "k8s", "render", str(tmp_path / "long.yaml"), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rendered = json.loads(result.stdout)
    objects = rendered["items"] if isinstance(rendered, dict) and "items" in rendered else rendered
    made = [o for o in objects if o["kind"] != "SeldonDeployment"]
    names = [o["metadata"]["name"] for o in made]
    assert {"Deployment", "Service"} <= {o["kind"] for o in made}
    assert all(len(n) <= 63 for n in names), names
    assert len(set(names)) == len(names)  # distinct
    # Recognisable: each starts with the deployment's name and keeps the predictor's.
    assert all(n.startswith(LONG_NAME[:30]) for n in names), names
    assert any("-canary" in n for n in names) and any("-default" in n for n in names)
    for obj in made:
        for value in obj["metadata"].get("labels", {}).values():
            assert len(value) <= 63, value
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)
    # The same manifest renders the same names again.
    again = subprocess.run(
        [seldon_bin(), "k8s", "render", str(tmp_path / "long.yaml"), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.stdout == result.stdout
