"""What `render` makes of a SeldonDeployment beyond the seed's four prototypes (those run as
processes in test_pods_as_processes.py): names, the separate engine pod, traffic and shadows
in the Ambassador Mappings, read timeouts, HPAs, gRPC nodes, the user's own settings, and
output a cluster accepts (Kubernetes' own schemas) and can re-apply without a rollout."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from seldon_serving.deploy.k8s import names
from seldon_serving.deploy.k8s.render import RenderOptions, render_manifest, to_yaml
from seldon_serving.spec import ManifestError, convert, generate
from tests.helpers import seldon_bin

MOCK = "seldonio/mock_classifier:1.0"
K8S_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]


def sdep(predictors: list[dict[str, Any]], name: str = "mydep", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "machinelearning.seldon.io/v1alpha2",
        "kind": "SeldonDeployment",
        "metadata": {"name": name},
        "spec": {"name": name, "predictors": predictors, **spec},
    }


def predictor(name: str = "main", image: str = MOCK, node: str = "model", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "replicas": 1,
        "componentSpecs": [{"spec": {"containers": [{"name": node, "image": image}]}}],
        "graph": {"name": node, "type": "MODEL", "endpoint": {"type": "REST"}, "children": []},
        **extra,
    }


def kinds(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def mappings(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    (service,) = [o for o in kinds(objects, "Service") if "annotations" in o["metadata"]]
    return list(yaml.safe_load_all(service["metadata"]["annotations"]["getambassador.io/config"]))


def engine_predictor(objects: list[dict[str, Any]]) -> dict[str, Any]:
    for deployment in kinds(objects, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            if container["name"] == "seldon-container-engine":
                (value,) = [e["value"] for e in container["env"] if e["name"] == "ENGINE_PREDICTOR"]
                return json.loads(base64.b64decode(value))
    raise AssertionError("no engine container")


def container(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for deployment in kinds(objects, "Deployment"):
        for found in deployment["spec"]["template"]["spec"]["containers"]:
            if found["name"] == name:
                return found
    raise AssertionError(f"no container {name}")


def env(found: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in found.get("env") or []}


def valid(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_long_names_are_hashed_to_what_kubernetes_accepts() -> None:
    long = "a-deployment-name-that-goes-on-and-on-and-on-and-on"
    objects = render_manifest(sdep([predictor("predictor-with-a-long-name-too")], name=long), None)
    for obj in objects:
        name = obj["metadata"]["name"]
        assert len(name) <= 63 and name[0].isalpha(), name
        for value in obj["metadata"].get("labels", {}).values():
            assert len(value) <= 63
    # Cut, and a hash of the whole name: distinct, and still recognisable.
    shortened = names.deployment_name(long, "p" * 40, [("c", "i")])
    assert len(shortened) <= 63 and shortened.startswith("a-deployment-name-that-goes-on")
    assert shortened != names.deployment_name(long, "p" * 41, [("c", "i")])
    valid(objects)


def test_the_engine_runs_in_the_first_pod_and_calls_its_containers_on_localhost() -> None:
    two = predictor()
    two["componentSpecs"].append({"spec": {"containers": [{"name": "second", "image": MOCK}]}})
    two["graph"] = {
        "name": "model",
        "type": "MODEL",
        "children": [{"name": "second", "type": "MODEL", "endpoint": {"type": "GRPC"}}],
    }
    objects = render_manifest(sdep([two]), "team-a")
    graph = engine_predictor(objects)["graph"]
    assert graph["endpoint"] == {"service_host": "localhost", "service_port": 9000, "type": "REST"}
    child = graph["children"][0]["endpoint"]
    assert child == {
        "service_host": "mydep-main-second.team-a.svc.cluster.local.",
        "service_port": 9501,  # its gRPC port: the node's endpoint says GRPC
        "type": "GRPC",
    }
    assert env(container(objects, "second"))["PREDICTIVE_UNIT_SERVICE_PORT"] == "9501"
    first, second = kinds(objects, "Deployment")
    assert "seldon-container-engine" in [c["name"] for c in first["spec"]["template"]["spec"]["containers"]]
    assert "seldon-container-engine" not in [
        c["name"] for c in second["spec"]["template"]["spec"]["containers"]
    ]
    valid(objects)


def test_the_engine_separate_pod_annotation_gives_it_a_deployment_of_its_own() -> None:
    manifest = sdep([predictor()], annotations={"seldon.io/engine-separate-pod": "true"})
    objects = render_manifest(manifest, None)
    deployments = {d["metadata"]["name"]: d for d in kinds(objects, "Deployment")}
    assert "mydep-main-svc-orch" in deployments
    engine_pod = deployments.pop("mydep-main-svc-orch")["spec"]["template"]
    assert [c["name"] for c in engine_pod["spec"]["containers"]] == ["seldon-container-engine"]
    assert engine_pod["metadata"]["labels"]["seldon-app"] == "mydep"
    (model_pod,) = deployments.values()
    assert [c["name"] for c in model_pod["spec"]["template"]["spec"]["containers"]] == ["model"]
    assert (
        engine_predictor(objects)["graph"]["endpoint"]["service_host"]
        == "mydep-main-model.default.svc.cluster.local."
    )
    valid(objects)


def test_traffic_splits_by_weighted_mappings_and_shadows_mirror() -> None:
    manifest = sdep(
        [
            predictor("main", traffic=75),
            predictor("canary", traffic=25),
            predictor("mirror", shadow=True),
        ],
        annotations={"seldon.io/rest-read-timeout": "10000", "seldon.io/grpc-read-timeout": "20000"},
    )
    objects = render_manifest(manifest, "prod")
    found = mappings(objects)
    rest = {m["name"]: m for m in found if not m.get("grpc")}
    grpc = {m["name"]: m for m in found if m.get("grpc")}
    main = rest["seldon_prod_mydep_main_rest_mapping"]
    assert (main["prefix"], main["service"], main["weight"]) == (
        "/seldon/prod/mydep/",
        "mydep-main.prod:8000",
        75,
    )
    assert rest["seldon_prod_mydep_canary_rest_mapping"]["weight"] == 25
    shadow = rest["seldon_prod_mydep_mirror_shadow_rest_mapping"]
    assert shadow["shadow"] is True and "weight" not in shadow
    assert {m["timeout_ms"] for m in rest.values()} == {10000}
    assert {m["timeout_ms"] for m in grpc.values()} == {20000}
    assert grpc["seldon_prod_mydep_main_grpc_mapping"]["headers"] == {"seldon": "mydep", "namespace": "prod"}
    # the seed's un-namespaced path too (a single-namespace install)
    assert rest["seldon_mydep_main_rest_mapping"]["prefix"] == "/seldon/mydep/"
    services = {s["metadata"]["name"]: s for s in kinds(objects, "Service")}
    assert services["mydep-canary"]["spec"]["selector"] == {
        "seldon-app": "mydep",
        "seldon-predictor": "canary",
    }
    # A cluster-wide install maps only the namespaced paths (names must not collide across namespaces).
    cluster_wide = mappings(render_manifest(manifest, "prod", RenderOptions(single_namespace=False)))
    assert all(m["prefix"].startswith("/seldon/prod/") for m in cluster_wide if not m.get("grpc"))
    assert all(m["headers"].get("namespace") == "prod" for m in cluster_wide if m.get("grpc"))
    valid(objects)


def test_hpa_spec_becomes_an_autoscaling_v2_hpa() -> None:
    scaled = predictor()
    scaled["componentSpecs"][0]["hpaSpec"] = {
        "minReplicas": 1,
        "maxReplicas": 4,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "targetAverageUtilization": 70}}],
    }
    objects = render_manifest(sdep([scaled]), None)
    (hpa,) = kinds(objects, "HorizontalPodAutoscaler")
    (deployment,) = kinds(objects, "Deployment")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert "replicas" not in deployment["spec"]  # the autoscaler's to set: a re-apply keeps them
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
        }
    ]
    valid(objects)


def test_replicas_follow_the_predictor_and_the_component_spec() -> None:
    scaled = predictor(replicas=3)
    scaled["componentSpecs"].append({"replicas": 2, "spec": {"containers": [{"name": "b", "image": MOCK}]}})
    scaled["graph"]["children"] = [{"name": "b", "type": "MODEL"}]
    first, second = kinds(render_manifest(sdep([scaled]), None), "Deployment")
    assert (first["spec"]["replicas"], second["spec"]["replicas"]) == (3, 2)


def test_the_users_settings_are_kept_and_other_images_run_as_given() -> None:
    mine = predictor(image="example.com/team/my-model:2")
    mine["componentSpecs"][0]["spec"]["containers"][0].update(
        {
            "env": [{"name": "PREDICTIVE_UNIT_PARAMETERS", "value": "[]"}, {"name": "OWN", "value": "1"}],
            "ports": [{"name": "http", "containerPort": 7777}],
            "resources": {"limits": {"memory": "1Gi"}},
        }
    )
    mine["componentSpecs"][0]["spec"]["containers"].append({"name": "sidecar", "image": "busybox"})
    mine["graph"]["parameters"] = [{"name": "alpha", "value": "0.5", "type": "FLOAT"}]
    objects = render_manifest(sdep([mine]), None)
    model = container(objects, "model")
    values = env(model)
    assert model["image"] == "example.com/team/my-model:2" and "command" not in model
    assert values["PREDICTIVE_UNIT_PARAMETERS"] == "[]"  # the user's value wins (Seldon's rule)
    assert values["OWN"] == "1" and values["PREDICTIVE_UNIT_ID"] == "model"
    assert model["ports"] == [{"name": "http", "containerPort": 7777}]
    assert model["resources"] == {"limits": {"memory": "1Gi"}}
    sidecar = container(objects, "sidecar")
    assert sidecar == {"name": "sidecar", "image": "busybox"}  # not a graph node: untouched
    valid(objects)


def test_seed_images_run_our_builtins_unless_the_configmap_says_otherwise() -> None:
    objects = render_manifest(sdep([predictor()]), None, RenderOptions(runtime_image="r/s:1"))
    model = container(objects, "model")
    assert model["image"] == "r/s:1"
    assert model["command"] == [
        "seldon",
        "microservice",
        "seldon_serving.components.builtin.MockClassifier",
        "--service-type",
        "MODEL",
    ]
    assert env(model)["PREDICTIVE_UNIT_IMAGE"] == MOCK  # requestPath still names the seed's image
    untouched = render_manifest(sdep([predictor()]), None, RenderOptions(builtin_images={}))
    assert container(untouched, "model")["image"] == MOCK


def test_a_detector_image_tag_picks_that_tags_builtin() -> None:
    # Seldon's 0.2 detector image scores differently from 0.3: the tag's own entry wins.
    def command(image: str) -> Any:
        return container(render_manifest(sdep([predictor(image=image)]), None), "model")["command"][2]

    builtin = "seldon_serving.components.builtin."
    assert command("seldonio/outlier_mahalanobis:0.2") == builtin + "OutlierMahalanobis02"
    assert command("seldonio/outlier_mahalanobis:0.3") == builtin + "OutlierMahalanobis"


def test_render_is_deterministic_and_owner_references_need_the_uid() -> None:
    manifest = generate("mab", "mymab", image_a=MOCK, image_b=MOCK)["items"][-1]
    first = render_manifest(copy.deepcopy(manifest), None)
    assert to_yaml(first) == to_yaml(render_manifest(copy.deepcopy(manifest), None))
    assert all("ownerReferences" not in o["metadata"] for o in first)
    owned = render_manifest(manifest, None, RenderOptions(owner_uid="1234"))
    for obj in owned:
        (ref,) = obj["metadata"]["ownerReferences"]
        assert ref == {
            "apiVersion": "machinelearning.seldon.io/v1alpha2",
            "kind": "SeldonDeployment",
            "name": "mymab",
            "uid": "1234",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    assert "&id" not in to_yaml(owned) and "*id" not in to_yaml(owned)  # no YAML aliases


@pytest.mark.parametrize("version", ["v1alpha3", "v1"])
def test_every_api_version_renders_the_same_objects(version: str) -> None:
    manifest = generate("outlier-detector", "mymodel", image=MOCK)["items"][-1]
    newer = convert(manifest, version)
    assert render_manifest(newer, None) == render_manifest(manifest, None)


def test_the_prototypes_pvc_volume_is_flattened_for_kubernetes() -> None:
    doc = generate("serve-simple", "mymodel", image=MOCK, pvc_name="mypvc")
    objects = render_manifest(doc["items"][-1], None)
    (deployment,) = kinds(objects, "Deployment")
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"name": "persistent-storage", "persistentVolumeClaim": {"claimName": "mypvc"}} in volumes
    valid(objects)


def test_a_manifest_validate_refuses_is_refused_with_the_same_sentence() -> None:
    bad = sdep([predictor("main", traffic=60), predictor("other", traffic=60)])
    with pytest.raises(ManifestError) as refused:
        render_manifest(bad, None)
    assert "traffic" in str(refused.value)
    model_server = predictor()
    model_server["graph"] = {
        "name": "model",
        "implementation": "TENSORFLOW_SERVER",
        "modelUri": "gs://bucket/model",
    }
    with pytest.raises(ManifestError, match="TENSORFLOW_SERVER does not run on Kubernetes here yet"):
        render_manifest(sdep([model_server]), None)


def test_the_cli_prints_what_the_operator_applies(tmp_path: Path) -> None:
    generated = subprocess.run(
        [
            seldon_bin(),
            "generate",
            "abtest",
            "myab",
            "--imageA",
            MOCK,
            "--imageB",
            MOCK,
            "--namespace",
            "models",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    (tmp_path / "myab.yaml").write_text(generated)
    printed = subprocess.run(
        [seldon_bin(), "k8s", "render", str(tmp_path / "myab.yaml"), "--image", "r/s:2"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    manifest = yaml.safe_load(generated)["items"][-1]
    assert list(yaml.safe_load_all(printed)) == render_manifest(
        manifest, None, RenderOptions(runtime_image="r/s:2")
    )
    assert {o["metadata"]["namespace"] for o in yaml.safe_load_all(printed)} == {"models"}


def test_the_cli_names_the_file_and_field_of_a_bad_manifest(tmp_path: Path) -> None:
    bad = sdep([predictor("main", traffic=60), predictor("other", traffic=60)])
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    done = subprocess.run(
        [seldon_bin(), "k8s", "render", str(tmp_path / "bad.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and done.stdout == ""
    assert "bad.yaml" in done.stderr and "traffic" in done.stderr
    assert "Traceback" not in done.stderr
