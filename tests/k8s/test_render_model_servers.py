"""Model server nodes (SKLEARN_SERVER, ..., registered servers) rendered for a cluster: a
container of the runtime image running `seldon microservice --server`, added as Seldon's
operator adds it or merged into the container the user named like the node, with its model's
claim mounted read-only or a download cache, and output Kubernetes' own schemas accept."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from seldon_serving.components.servers import forget_registered, register_server
from seldon_serving.deploy.k8s.render import RenderOptions, render_manifest
from tests.k8s.test_render import MOCK, container, engine_predictor, env, kinds, sdep, valid

IMAGE = "registry.test/seldon-serving:3"


def server_node(name: str = "clf", uri: str = "pvc://models/iris", **extra: Any) -> dict[str, Any]:
    return {"name": name, "implementation": "SKLEARN_SERVER", "modelUri": uri, **extra}


def server_predictor(graph: dict[str, Any], containers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    specs = [{"spec": {"containers": containers}}] if containers is not None else []
    return {"name": "default", "replicas": 1, "graph": graph, "componentSpecs": specs}


def render(predictors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return render_manifest(sdep(predictors, name="iris"), None, RenderOptions(runtime_image=IMAGE))


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = kinds(objects, "Deployment")
    return dict(deployment["spec"]["template"]["spec"])


@pytest.fixture
def registry() -> Iterator[None]:
    yield
    forget_registered()


def test_a_server_node_without_a_container_gets_one_reading_its_claim() -> None:
    objects = render([server_predictor(server_node(parameters=[_param("method", "predict")]))])
    pod = pod_spec(objects)
    assert [c["name"] for c in pod["containers"]] == ["clf", "seldon-container-engine"]
    clf = container(objects, "clf")
    assert clf["image"] == IMAGE
    assert clf["command"] == [
        "seldon", "microservice", "--server", "sklearn", "--model-uri", "pvc://models/iris",
        "--service-type", "MODEL", "--pvc-root", "/mnt/pvc",
    ]  # fmt: skip
    assert {"name": "seldon-pvc-models", "mountPath": "/mnt/pvc/models", "readOnly": True} in clf[
        "volumeMounts"
    ]
    assert {
        "name": "seldon-pvc-models",
        "persistentVolumeClaim": {"claimName": "models", "readOnly": True},
    } in pod["volumes"]
    values = env(clf)
    assert values["PREDICTIVE_UNIT_PARAMETERS"] == '[{"name":"method","value":"predict","type":"STRING"}]'
    assert values["PREDICTIVE_UNIT_HTTP_SERVICE_PORT"] == "9000"
    assert clf["startupProbe"]["tcpSocket"] == {"port": 9000}  # a slow download is not killed as dead
    # The engine in the same pod calls it on localhost, as a remote MODEL.
    graph = engine_predictor(objects)["graph"]
    assert graph["endpoint"] == {"service_host": "localhost", "service_port": 9000, "type": "REST"}
    valid(objects)


def test_the_container_named_like_the_node_keeps_the_users_env_resources_and_mounts() -> None:
    given = {
        "name": "clf",
        "env": [
            {"name": "AWS_ACCESS_KEY_ID", "value": "key"},
            {"name": "AWS_ENDPOINT_URL", "value": "http://s3"},
        ],
        "resources": {"requests": {"memory": "2Gi"}},
        "volumeMounts": [{"name": "extra", "mountPath": "/extra"}],
    }
    graph = server_node(
        uri="s3://bucket/iris", envSecretRefName="s3-credentials", serviceAccountName="reader"
    )
    sidecar = {"name": "logger", "image": "busybox"}
    predictor = server_predictor(graph, [given, sidecar])
    predictor["componentSpecs"][0]["spec"]["volumes"] = [{"name": "extra", "emptyDir": {}}]
    objects = render([predictor])
    clf = container(objects, "clf")
    values = env(clf)
    assert values["AWS_ACCESS_KEY_ID"] == "key" and values["AWS_ENDPOINT_URL"] == "http://s3"
    assert clf["resources"] == {"requests": {"memory": "2Gi"}}
    assert clf["image"] == IMAGE
    assert clf["command"][-2:] == ["--model-cache", "/mnt/models"]
    assert clf["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}]
    mounts = {m["mountPath"]: m["name"] for m in clf["volumeMounts"]}
    assert mounts["/extra"] == "extra" and mounts["/mnt/models"] == "seldon-model-cache"
    pod = pod_spec(objects)
    assert {"name": "seldon-model-cache", "emptyDir": {}} in pod["volumes"]
    assert pod["serviceAccountName"] == "reader"
    assert container(objects, "logger") == sidecar
    valid(objects)


def test_added_server_containers_take_ports_after_the_users_containers() -> None:
    graph = {
        "name": "transformer",
        "type": "TRANSFORMER",
        "children": [server_node("a", "pvc://models/a"), server_node("b", "pvc://other/b")],
    }
    # Two children: the transformer's output goes to both; one answer is kept (Seldon's engine).
    objects = render([server_predictor(graph, [{"name": "transformer", "image": "me/transformer:1"}])])
    ports = {
        c["name"]: env(c).get("PREDICTIVE_UNIT_HTTP_SERVICE_PORT") for c in pod_spec(objects)["containers"]
    }
    assert ports == {"transformer": "9000", "a": "9001", "b": "9002", "seldon-container-engine": None}
    volumes = {v["name"] for v in pod_spec(objects)["volumes"]}
    assert {"seldon-pvc-models", "seldon-pvc-other"} <= volumes
    valid(objects)


def test_a_registered_server_runs_its_class_and_the_engine_calls_it_as_a_model(registry: None) -> None:
    register_server("IRIS_SERVER=iris_serving.server:IrisServer")
    graph = {"name": "clf", "implementation": "IRIS_SERVER", "modelUri": "gs://bucket/iris"}
    own_image = {"name": "clf", "image": "me/iris-server:1"}
    objects = render([server_predictor(graph, [own_image])])
    clf = container(objects, "clf")
    assert clf["image"] == "me/iris-server:1"  # the container names one: it is used
    assert clf["command"][:6] == [
        "seldon", "microservice", "--server", "IRIS_SERVER=iris_serving.server:IrisServer", "--model-uri",
        "gs://bucket/iris",
    ]  # fmt: skip
    node = engine_predictor(objects)["graph"]
    assert "implementation" not in node and node["type"] == "MODEL"
    valid(objects)


def test_a_server_beside_a_seed_image_and_an_engine_side_router() -> None:
    graph = {
        "name": "ab",
        "implementation": "RANDOM_ABTEST",
        "parameters": [{"name": "ratioA", "value": "0.5", "type": "FLOAT"}],
        "children": [{"name": "mock", "type": "MODEL"}, server_node("clf", "/models/iris")],
    }
    objects = render([server_predictor(graph, [{"name": "mock", "image": MOCK}])])
    names = [c["name"] for c in pod_spec(objects)["containers"]]
    assert names == ["mock", "clf", "seldon-container-engine"]  # the A/B test runs in the engine
    clf = container(objects, "clf")
    assert clf["command"][4:6] == ["--model-uri", "/models/iris"]  # a path inside the image: no volume
    assert "--pvc-root" not in clf["command"] and "--model-cache" not in clf["command"]
    valid(objects)


def _param(name: str, value: str) -> dict[str, str]:
    return {"name": name, "value": value, "type": "STRING"}
