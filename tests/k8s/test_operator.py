"""The operator's kopf handlers, called as kopf calls them, against the in-memory Kubernetes API
double (tests/k8s/fake_api.py): create, update, scale, delete, a refused manifest, readiness,
a restart; plus the real `KubernetesApi` on the wire (a recording HTTP server on 127.0.0.1) and
the `seldon k8s operator` command."""

from __future__ import annotations

import base64
import copy
import datetime
import http.server
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import kopf
import pytest
from click.testing import CliRunner

from seldon_serving.cli.main import cli
from seldon_serving.deploy.k8s import operator, reconcile
from seldon_serving.deploy.k8s.kube import (
    FIELD_MANAGER,
    SDEP_API_VERSION,
    KubeError,
    KubernetesApi,
)
from seldon_serving.deploy.k8s.render import RenderOptions, render_manifest
from seldon_serving.spec import API_VERSIONS, ManifestError, convert, generate
from tests.k8s.fake_api import FakeKube

OPTIONS = RenderOptions(runtime_image="example.org/seldon-serving:test", single_namespace=False)
MOCK = "seldonio/mock_classifier:1.0"
_IMAGES = {
    "serve-simple": {"image": MOCK},
    "outlier-detector": {"image": MOCK},
    "abtest": {"image_a": MOCK, "image_b": "example.org/other-model:2.0"},
    "mab": {"image_a": MOCK, "image_b": "example.org/other-model:2.0"},
}


def prototype(name: str, kind: str, version: str = "v1alpha2", **options: Any) -> dict[str, Any]:
    """One of the seed's prototypes, as `seldon generate` writes it (its SeldonDeployment)."""
    listed = generate(kind, name, api_version=version, **{**_IMAGES[kind], **options})
    return copy.deepcopy(listed["items"][-1])


def kopf_kwargs(body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The keyword arguments kopf passes a resource handler, built from kopf's own types."""
    wrapped = kopf.Body(copy.deepcopy(body))  # type: ignore[arg-type]
    now = datetime.datetime.now(datetime.UTC)
    return {
        "body": wrapped,
        "spec": wrapped.spec,
        "meta": wrapped.meta,
        "status": wrapped.status,
        "labels": wrapped.metadata.labels,
        "annotations": wrapped.metadata.annotations,
        "namespace": wrapped.metadata.namespace,
        "name": wrapped.metadata.name,
        "uid": wrapped.metadata.uid,
        "patch": kopf.Patch(),
        "logger": logging.getLogger("test.operator"),
        "memo": kopf.Memo(),
        "retry": 0,
        "started": now,
        "runtime": datetime.timedelta(0),
        "param": None,
        **extra,
    }


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    fake = FakeKube()
    operator.configure(fake, OPTIONS)
    yield fake
    operator.configure(None, None)


def created(kube: FakeKube, manifest: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
    """`kubectl create`, then kopf's create handler; the SeldonDeployment afterwards."""
    body = kube.create_sdep(manifest, namespace)
    operator.on_change(**kopf_kwargs(body, reason="create", diff=(), old=None, new=body))
    return kube.sdep(namespace, body["metadata"]["name"])


def updated(kube: FakeKube, namespace: str, name: str, change: Any) -> dict[str, Any]:
    body = kube.update_sdep(namespace, name, change)
    operator.on_change(**kopf_kwargs(body, reason="update"))
    return kube.sdep(namespace, name)


def deployment_event(kube: FakeKube, deployment: dict[str, Any], kind: str = "MODIFIED") -> None:
    operator.on_deployment_event(
        **kopf_kwargs(deployment, type=kind, event={"type": kind, "object": deployment})
    )


def all_ready(kube: FakeKube, body: dict[str, Any]) -> dict[str, Any]:
    """The Deployment controller brings every Deployment up; kopf reports each change."""
    uid = body["metadata"]["uid"]
    for deployment in [d for d in kube.owned_by(uid) if d["kind"] == "Deployment"]:
        deployment_event(
            kube, kube.mark_available(deployment["metadata"]["namespace"], deployment["metadata"]["name"])
        )
    return kube.sdep(body["metadata"]["namespace"], body["metadata"]["name"])


def expected(manifest: dict[str, Any], body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """What render makes of `manifest` (v1alpha1 converted as `seldon convert` does) in the body's
    namespace, owned by its uid, keyed by (kind, name); the owner's apiVersion is the version
    the operator reads at."""
    options = RenderOptions(**{**OPTIONS.__dict__, "owner_uid": body["metadata"]["uid"]})
    if manifest["apiVersion"] == API_VERSIONS["v1alpha1"]:
        manifest = convert(manifest, "v1alpha2")
    objects = render_manifest(manifest, body["metadata"]["namespace"], options)
    for obj in objects:
        obj["metadata"]["ownerReferences"][0]["apiVersion"] = SDEP_API_VERSION
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def applied(kube: FakeKube, body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """What the operator applied for `body` (the applied configurations, keyed by (kind, name))."""
    uid = body["metadata"]["uid"]
    return {
        (key[1], key[3]): obj
        for key, obj in kube.applied.items()
        if any(r["uid"] == uid for r in obj["metadata"].get("ownerReferences") or [])
    }


def deployments(kube: FakeKube, body: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in kube.owned_by(body["metadata"]["uid"]) if o["kind"] == "Deployment"]


def env_of(deployment: dict[str, Any], container: str) -> dict[str, str]:
    for c in deployment["spec"]["template"]["spec"]["containers"]:
        if c["name"] == container:
            return {e["name"]: e.get("value", "") for e in c.get("env") or []}
    raise AssertionError(f"no container {container}")


# --- create -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1alpha1", "v1alpha2"])
@pytest.mark.parametrize("kind", ["serve-simple", "abtest", "mab", "outlier-detector"])
def test_create_applies_exactly_what_render_makes(kube: FakeKube, kind: str, version: str) -> None:
    manifest = prototype(f"my-{kind}", kind, version)
    body = created(kube, manifest, "models")
    uid = body["metadata"]["uid"]
    want = expected(manifest, body)
    assert applied(kube, body) == want
    for obj in kube.owned_by(uid):
        (ref,) = obj["metadata"]["ownerReferences"]
        assert ref == {
            "apiVersion": SDEP_API_VERSION,
            "kind": "SeldonDeployment",
            "name": f"my-{kind}",
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    names = sorted(name for k, name in want if k == "Deployment")
    assert body["status"]["state"] == "Creating"
    assert sorted(p["name"] for p in body["status"]["predictorStatus"]) == names
    assert all(p["replicasAvailable"] == 0 and p["replicas"] == 1 for p in body["status"]["predictorStatus"])
    assert "description" not in body["status"]
    assert kube.events == []


def test_a_v1alpha1_object_read_at_v1alpha2_keeps_one_deployment_per_predictor(kube: FakeKube) -> None:
    # Written as v1alpha1 (componentSpec, both models in one pod); the API server hands it over
    # at v1alpha2 with only apiVersion rewritten.
    manifest = prototype("ab", "abtest", "v1alpha1")
    body = kube.create_sdep(manifest, "default")
    assert body["apiVersion"] == SDEP_API_VERSION and "componentSpec" in body["spec"]["predictors"][0]
    operator.on_change(**kopf_kwargs(body))
    (deployment,) = deployments(kube, body)
    containers = [c["name"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert containers == ["classifier-1", "classifier-2", "seldon-container-engine"]
    assert kube.sdep("default", "ab")["status"]["state"] == "Creating"


@pytest.mark.parametrize("version", ["v1alpha3", "v1"])
def test_create_from_later_api_versions(kube: FakeKube, version: str) -> None:
    manifest = prototype("later", "abtest", "v1alpha2")
    manifest["apiVersion"] = API_VERSIONS[version]
    manifest["spec"]["predictors"][0]["componentSpecs"][1]["replicas"] = 2  # v1: per-pod replicas
    body = created(kube, manifest)
    assert applied(kube, body) == expected(manifest, body)
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"] for d in deployments(kube, body)}
    assert sorted(replicas.values()) == [1, 2]


def test_normalise_takes_the_version_from_the_shape() -> None:
    v1alpha1 = prototype("m", "serve-simple", "v1alpha1")
    as_read = {**v1alpha1, "apiVersion": SDEP_API_VERSION, "status": {"state": "Creating"}}
    out = reconcile.normalise(as_read)
    assert out["apiVersion"] == API_VERSIONS["v1alpha2"] and "status" not in out
    assert out["spec"]["predictors"][0]["componentSpecs"] == [
        v1alpha1["spec"]["predictors"][0]["componentSpec"]
    ]
    v1alpha2 = prototype("m", "serve-simple", "v1alpha2")
    assert reconcile.normalise({**v1alpha2, "apiVersion": API_VERSIONS["v1alpha1"]}) == v1alpha2
    v1 = {**v1alpha2, "apiVersion": API_VERSIONS["v1"]}
    assert reconcile.normalise(v1) == v1


# --- update and scale ---------------------------------------------------------------------------------


def test_a_changed_parameter_rolls_the_same_deployment(kube: FakeKube) -> None:
    body = all_ready(kube, created(kube, prototype("mab", "mab")))
    assert body["status"]["state"] == "Available"
    before = {d["metadata"]["name"]: d for d in deployments(kube, body)}
    kube.calls.clear()

    def set_epsilon(doc: dict[str, Any]) -> None:
        doc["spec"]["predictors"][0]["graph"]["parameters"][1]["value"] = "0.5"

    body = updated(kube, "default", "mab", set_epsilon)
    after = {d["metadata"]["name"]: d for d in deployments(kube, body)}
    assert after.keys() == before.keys()
    # The router's env and the engine's predictor JSON hold the parameter: those pods roll (one
    # apply each changes the pod template, in place), the other Deployment is not touched.
    touched = {
        name
        for name, d in after.items()
        if {"eg-router", "seldon-container-engine"}
        & {c["name"] for c in d["spec"]["template"]["spec"]["containers"]}
    }
    assert sorted(kube.changed("apply")) == sorted(f"Deployment/{name}" for name in touched)
    assert len(touched) == 2 and len(after) == 3
    router = next(
        d for d in after.values() if "eg-router" in str(d["spec"]["template"]["spec"]["containers"])
    )
    assert '"value":"0.5"' in env_of(router, "eg-router")["PREDICTIVE_UNIT_PARAMETERS"]
    for name, deployment in after.items():
        bump = 1 if name in touched else 0
        assert deployment["metadata"]["generation"] == before[name]["metadata"]["generation"] + bump
    assert body["status"]["state"] == "Creating"  # until the rollout is done
    assert all_ready(kube, body)["status"]["state"] == "Available"


def test_a_changed_image_replaces_the_deployment_once_the_new_one_is_up(kube: FakeKube) -> None:
    body = all_ready(kube, created(kube, prototype("simple", "serve-simple")))
    (old,) = deployments(kube, body)

    def new_image(doc: dict[str, Any]) -> None:
        doc["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]["image"] = (
            "example.org/m:2"
        )

    body = updated(kube, "default", "simple", new_image)
    names = {d["metadata"]["name"] for d in deployments(kube, body)}
    new_name = (names - {old["metadata"]["name"]}).pop()
    assert old["metadata"]["name"] in names  # still serving: its successor is not up yet
    assert [p["name"] for p in body["status"]["predictorStatus"]] == [new_name]
    deployment_event(kube, kube.mark_available("default", new_name))
    assert [d["metadata"]["name"] for d in deployments(kube, body)] == [new_name]
    assert kube.sdep("default", "simple")["status"]["state"] == "Available"


def test_a_removed_component_spec_removes_its_deployment(kube: FakeKube) -> None:
    body = all_ready(kube, created(kube, prototype("ab", "abtest")))
    assert len(deployments(kube, body)) == 2

    def drop_second(doc: dict[str, Any]) -> None:
        predictor = doc["spec"]["predictors"][0]
        predictor["componentSpecs"].pop()
        predictor["graph"] = predictor["graph"]["children"][0]

    body = updated(kube, "default", "ab", drop_second)
    all_ready(kube, body)
    (left,) = deployments(kube, body)
    assert left["spec"]["template"]["spec"]["containers"][0]["name"] == "classifier-1"
    assert applied(kube, body) == expected(kube.sdep("default", "ab"), body)
    assert not [s for s in kube.owned_by(body["metadata"]["uid"]) if "classifier-2" in s["metadata"]["name"]]


def test_scale_and_autoscale(kube: FakeKube) -> None:
    body = all_ready(kube, created(kube, prototype("big", "serve-simple")))

    def three(doc: dict[str, Any]) -> None:
        doc["spec"]["predictors"][0]["replicas"] = 3

    body = updated(kube, "default", "big", three)
    (deployment,) = deployments(kube, body)
    assert deployment["spec"]["replicas"] == 3
    assert body["status"]["predictorStatus"] == [
        {"name": deployment["metadata"]["name"], "replicas": 3, "replicasAvailable": 1}
    ]
    assert body["status"]["state"] == "Creating"
    assert all_ready(kube, body)["status"]["predictorStatus"][0]["replicasAvailable"] == 3

    def autoscale(doc: dict[str, Any]) -> None:
        doc["spec"]["predictors"][0]["componentSpecs"][0]["hpaSpec"] = {
            "minReplicas": 2,
            "maxReplicas": 5,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "targetAverageUtilization": 70}}],
        }

    body = updated(kube, "default", "big", autoscale)
    (hpa,) = kube.of_kind("HorizontalPodAutoscaler", "default")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert hpa["metadata"]["ownerReferences"][0]["uid"] == body["metadata"]["uid"]

    def no_autoscale(doc: dict[str, Any]) -> None:
        del doc["spec"]["predictors"][0]["componentSpecs"][0]["hpaSpec"]

    updated(kube, "default", "big", no_autoscale)
    assert kube.of_kind("HorizontalPodAutoscaler") == []


def test_traffic_and_shadow_become_weighted_and_shadow_mappings(kube: FakeKube) -> None:
    manifest = prototype("canary", "serve-simple")
    main = manifest["spec"]["predictors"][0]
    canary = copy.deepcopy(main)
    main["name"], canary["name"], main["traffic"], canary["traffic"] = "main", "canary", 75, 25
    mirror = copy.deepcopy(main)
    mirror["name"], mirror["shadow"] = "mirror", True
    del mirror["traffic"]
    manifest["spec"]["predictors"] += [canary, mirror]
    body = created(kube, manifest)
    service = kube.find("Service", "default", "canary")
    assert service is not None
    mappings = service["metadata"]["annotations"]["getambassador.io/config"]
    assert "weight: 75" in mappings and "weight: 25" in mappings and "shadow: true" in mappings
    assert applied(kube, body) == expected(manifest, body)


# --- delete ------------------------------------------------------------------------------------------


def test_delete_removes_everything_it_made_and_nothing_else(kube: FakeKube) -> None:
    gone = created(kube, prototype("gone", "abtest"))
    kept = created(kube, prototype("kept", "mab"))
    kept_before = {k: v for k, v in kube.versions().items() if not k[3].startswith("gone")}
    assert kube.owned_by(gone["metadata"]["uid"])

    operator.on_delete(**kopf_kwargs({**gone, "metadata": {**gone["metadata"], "deletionTimestamp": "now"}}))
    assert kube.owned_by(gone["metadata"]["uid"]) == []
    assert {k: v for k, v in kube.versions().items() if not k[3].startswith("gone")} == kept_before
    assert kube.owned_by(kept["metadata"]["uid"])


def test_garbage_collection_alone_cleans_up_without_the_operator(kube: FakeKube) -> None:
    # No finalizer: with the operator down, the API server's garbage collector does it all.
    body = created(kube, prototype("orphan", "mab"))
    kube.delete(SDEP_API_VERSION, "SeldonDeployment", "default", "orphan")
    assert kube.owned_by(body["metadata"]["uid"]) == []
    assert kube.objects == {}


# --- refused manifests ----------------------------------------------------------------------------------


def _refusal(manifest: dict[str, Any], namespace: str = "default") -> str:
    with pytest.raises(ManifestError) as caught:
        render_manifest(reconcile.normalise(manifest), namespace, OPTIONS)
    return str(caught.value)


@pytest.mark.parametrize("problem", ["no-container", "traffic"])
def test_a_refused_manifest_fails_with_validates_sentence_and_one_event(kube: FakeKube, problem: str) -> None:
    manifest = prototype("bad", "abtest")
    predictor = manifest["spec"]["predictors"][0]
    if problem == "no-container":
        predictor["graph"]["children"][1]["name"] = "nobody-runs-me"
    else:
        other = copy.deepcopy(predictor)
        other["name"], predictor["traffic"], other["traffic"] = "other", 50, 20
        manifest["spec"]["predictors"].append(other)
    sentence = _refusal(manifest)
    body = created(kube, manifest)
    assert body["status"] == {"state": "Failed", "description": sentence}
    (event,) = kube.events
    assert (event["type"], event["reason"], event["message"]) == ("Warning", "InvalidManifest", sentence)
    assert event["involvedObject"] == {
        "apiVersion": SDEP_API_VERSION,
        "kind": "SeldonDeployment",
        "name": "bad",
        "namespace": "default",
        "uid": body["metadata"]["uid"],
    }
    assert [c for c in kube.calls if c.verb == "apply"] == [] and kube.applied == {}
    operator.on_change(**kopf_kwargs(body))  # a restart: no second Event
    assert len(kube.events) == 1


def test_a_refused_update_keeps_the_last_good_version_until_fixed(kube: FakeKube) -> None:
    body = all_ready(kube, created(kube, prototype("live", "serve-simple")))
    running = kube.versions()

    def break_it(doc: dict[str, Any]) -> None:
        doc["spec"]["predictors"][0]["graph"]["name"] = "missing"

    body = updated(kube, "default", "live", break_it)
    assert body["status"]["state"] == "Failed"
    assert {k: v for k, v in kube.versions().items() if k[1] != "SeldonDeployment"} == {
        k: v for k, v in running.items() if k[1] != "SeldonDeployment"
    }

    def fix_it(doc: dict[str, Any]) -> None:
        doc["spec"]["predictors"][0]["graph"]["name"] = "live"

    body = updated(kube, "default", "live", fix_it)
    assert body["status"]["state"] == "Available" and "description" not in body["status"]


def test_an_object_the_api_server_refuses_fails_the_deployment(kube: FakeKube) -> None:
    kube.failures["apply", "Deployment"] = KubeError(422, 'Deployment.apps "x" is invalid: spec: bad')
    body = created(kube, prototype("refused", "serve-simple"))
    assert body["status"]["state"] == "Failed"
    assert body["status"]["description"].startswith("the API server refused Deployment refused-refused-")
    assert [e["reason"] for e in kube.events] == ["ApplyRefused"]


def test_a_transient_api_error_is_raised_for_kopf_to_retry(kube: FakeKube) -> None:
    kube.failures["apply", "Service"] = KubeError(503, "the server is currently unable to handle the request")
    body = kube.create_sdep(prototype("later", "serve-simple"))
    with pytest.raises(KubeError):
        operator.on_change(**kopf_kwargs(body))
    operator.on_change(**kopf_kwargs(kube.sdep("default", "later")))  # kopf's retry
    assert kube.sdep("default", "later")["status"]["state"] == "Creating"


# --- readiness ----------------------------------------------------------------------------------------


def test_deployments_becoming_ready_make_it_available(kube: FakeKube) -> None:
    body = created(kube, prototype("ab", "abtest"))
    first, second = deployments(kube, body)
    deployment_event(kube, kube.mark_available("default", first["metadata"]["name"]))
    assert kube.sdep("default", "ab")["status"]["state"] == "Creating"
    deployment_event(kube, kube.mark_available("default", second["metadata"]["name"], available=0))
    assert kube.sdep("default", "ab")["status"]["state"] == "Creating"
    deployment_event(kube, kube.mark_available("default", second["metadata"]["name"]))
    status = kube.sdep("default", "ab")["status"]
    assert status["state"] == "Available"
    assert sorted(status["predictorStatus"], key=lambda p: p["name"]) == sorted(
        [{"name": d["metadata"]["name"], "replicas": 1, "replicasAvailable": 1} for d in (first, second)],
        key=lambda p: p["name"],
    )


def test_a_deployment_deleted_by_hand_comes_back(kube: FakeKube) -> None:
    body = created(kube, prototype("back", "serve-simple"))
    (deployment,) = deployments(kube, body)
    kube.delete("apps/v1", "Deployment", "default", deployment["metadata"]["name"])
    deployment_event(kube, deployment, "DELETED")
    assert [d["metadata"]["name"] for d in deployments(kube, body)] == [deployment["metadata"]["name"]]


def test_events_of_deployments_without_a_live_owner_are_ignored(kube: FakeKube) -> None:
    body = created(kube, prototype("short", "serve-simple"))
    (deployment,) = deployments(kube, body)
    kube.delete(SDEP_API_VERSION, "SeldonDeployment", "default", "short")
    kube.calls.clear()
    deployment_event(kube, deployment, "DELETED")
    assert [c.verb for c in kube.calls] == ["get"]
    stranger = {**deployment, "metadata": {**deployment["metadata"], "ownerReferences": []}}
    deployment_event(kube, stranger)
    assert [c.verb for c in kube.calls] == ["get"]


# --- restarts -------------------------------------------------------------------------------------------


def test_resume_after_a_restart_changes_nothing(kube: FakeKube) -> None:
    body = all_ready(kube, created(kube, prototype("steady", "outlier-detector")))
    before, patches = kube.versions(), len(kube.status_patches)
    kube.calls.clear()
    operator.on_change(**kopf_kwargs(body, reason="resume"))
    assert kube.versions() == before
    assert len(kube.status_patches) == patches and kube.events == []
    assert kube.changed("apply") == [] and kube.changed("delete") == []
    assert {c.verb for c in kube.calls} == {"apply", "list"}


# --- the kopf wiring -------------------------------------------------------------------------------------


def test_handlers_are_registered_for_the_right_resources() -> None:
    changing = operator.REGISTRY._changing.get_all_handlers()
    by_id = {str(h.id): h for h in changing}
    assert set(by_id) == {"resume", "create", "update", "delete"}
    for handler in changing:
        assert handler.selector is not None
        assert (handler.selector.group, handler.selector.version, handler.selector.plural) == (
            "machinelearning.seldon.io",
            "v1alpha2",
            "seldondeployments",
        )
    assert by_id["delete"].requires_finalizer is False  # no finalizer: deletion never waits for us
    watched = {
        str(h.id): (h.selector.group, h.selector.version, h.selector.plural)
        for h in operator.REGISTRY._watching.get_all_handlers()
        if h.selector is not None
    }
    assert watched == {
        "deployment": ("apps", "v1", "deployments"),
        "front-end": ("machinelearning.seldon.io", "v1alpha2", "seldondeployments"),
    }


def test_kopf_settings_keep_status_ours() -> None:
    chosen = operator.settings()
    assert chosen.peering.standalone is True
    assert isinstance(chosen.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert isinstance(chosen.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)
    assert chosen.scanning.disabled is True
    assert list(chosen.watching.label_selectors.values()) == ["seldon-deployment-id"]


def test_run_checks_access_then_runs_kopf_standalone(kube: FakeKube, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[dict[str, Any]] = []
    monkeypatch.setattr(kopf, "run", lambda **kwargs: started.append(kwargs))
    monkeypatch.setattr(kopf, "configure", lambda **kwargs: None)
    operator.run(["models", "staging"], 8081, OPTIONS, api=kube)
    (kwargs,) = started
    assert kwargs["registry"] is operator.REGISTRY and kwargs["standalone"] is True
    assert (kwargs["clusterwide"], kwargs["namespaces"]) == (False, ["models", "staging"])
    assert kwargs["liveness_endpoint"] == "http://0.0.0.0:8081/healthz"
    assert [c.name for c in kube.calls if c.verb == "check_access"] == ["models,staging"]
    operator.run(None, 8080, OPTIONS, api=kube)
    assert (started[-1]["clusterwide"], started[-1]["namespaces"]) == (True, [])
    kube.crd_served = False
    with pytest.raises(KubeError, match="not served"):
        operator.run(None, 8080, OPTIONS, api=kube)
    assert len(started) == 2


# --- the real API client, on the wire -------------------------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    answers: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
    seen: list[dict[str, Any]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        self.seen.append(
            {
                "method": self.command,
                "path": path,
                "query": query,
                "type": self.headers.get("Content-Type"),
                "body": json.loads(raw) if raw else None,
            }
        )
        status, answer = self.answers.get((self.command, path), (200, {"kind": "Status"}))
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PATCH = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def wire() -> Iterator[tuple[KubernetesApi, type[_Recorder]]]:
    from kubernetes import client

    class Recorder(_Recorder):
        answers: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        seen: list[dict[str, Any]] = []

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
    api_client = client.ApiClient(configuration)
    try:
        yield KubernetesApi(api_client), Recorder
    finally:
        api_client.close()  # type: ignore[no-untyped-call]
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_real_client_applies_server_side(wire: tuple[KubernetesApi, type[_Recorder]]) -> None:
    api, server = wire
    objects = render_manifest(prototype("wire", "serve-simple"), "ns", RenderOptions(owner_uid="u-1"))
    deployment = objects[0]
    path = f"/apis/apps/v1/namespaces/ns/deployments/{deployment['metadata']['name']}"
    server.answers["PATCH", path] = (200, {**deployment, "status": {"replicas": 1}})
    live = api.apply(deployment)
    assert live["status"] == {"replicas": 1} and live["spec"] == deployment["spec"]
    (request,) = server.seen
    assert (request["method"], request["path"], request["type"]) == (
        "PATCH",
        path,
        "application/apply-patch+yaml",
    )
    assert sorted(request["query"].split("&")) == [f"fieldManager={FIELD_MANAGER}", "force=true"]
    assert request["body"] == deployment
    service = next(o for o in objects if o["kind"] == "Service")
    api.apply(service)
    assert server.seen[-1]["path"] == f"/api/v1/namespaces/ns/services/{service['metadata']['name']}"


def test_the_real_client_reads_lists_deletes_and_patches_status(
    wire: tuple[KubernetesApi, type[_Recorder]],
) -> None:
    api, server = wire
    sdep_path = "/apis/machinelearning.seldon.io/v1alpha2/namespaces/ns/seldondeployments/m"
    server.answers["GET", sdep_path] = (404, {"kind": "Status", "message": "not found", "code": 404})
    assert api.get(SDEP_API_VERSION, "SeldonDeployment", "ns", "m") is None
    items = {"kind": "DeploymentList", "items": [{"metadata": {"name": "d"}}]}
    server.answers["GET", "/apis/apps/v1/namespaces/ns/deployments"] = (200, items)
    owned = api.list_owned("ns", "m")
    assert owned == [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}]
    lists = [
        r
        for r in server.seen
        if r["method"] == "GET"
        and r["path"].endswith(("deployments", "services", "horizontalpodautoscalers"))
    ]
    assert len(lists) == 3 and all(r["query"] == "labelSelector=seldon-deployment-id%3Dm" for r in lists)
    assert api.delete("v1", "Service", "ns", "s") is True
    assert (
        server.seen[-1]["method"] == "DELETE" and "propagationPolicy=Background" in server.seen[-1]["query"]
    )
    server.answers["DELETE", "/api/v1/namespaces/ns/services/t"] = (404, {"kind": "Status", "code": 404})
    assert api.delete("v1", "Service", "ns", "t") is False
    assert api.patch_status("ns", "m", {"state": "Available", "description": None}) is True
    patch = server.seen[-1]
    assert (patch["method"], patch["path"], patch["type"]) == (
        "PATCH",
        f"{sdep_path}/status",
        "application/merge-patch+json",
    )
    assert patch["body"] == {"status": {"state": "Available", "description": None}}


def test_the_real_client_posts_events_and_reports_errors(wire: tuple[KubernetesApi, type[_Recorder]]) -> None:
    api, server = wire
    involved = {
        "apiVersion": SDEP_API_VERSION,
        "kind": "SeldonDeployment",
        "metadata": {"name": "m", "namespace": "ns", "uid": "u"},
    }
    api.post_event(involved, "InvalidManifest", "spec.predictors: bad", "Warning")
    event = server.seen[-1]
    assert (event["method"], event["path"]) == ("POST", "/api/v1/namespaces/ns/events")
    assert event["body"]["involvedObject"] == {
        "apiVersion": SDEP_API_VERSION,
        "kind": "SeldonDeployment",
        "name": "m",
        "namespace": "ns",
        "uid": "u",
    }
    assert (event["body"]["reason"], event["body"]["message"], event["body"]["type"]) == (
        "InvalidManifest",
        "spec.predictors: bad",
        "Warning",
    )
    server.answers["PATCH", "/apis/apps/v1/namespaces/ns/deployments/d"] = (
        422,
        {"kind": "Status", "code": 422, "message": 'Deployment.apps "d" is invalid'},
    )
    with pytest.raises(KubeError) as caught:
        api.apply(
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "ns"}}
        )
    assert caught.value.refused and caught.value.message == 'Deployment.apps "d" is invalid'
    crd = "/apis/machinelearning.seldon.io/v1alpha2/namespaces/ns/seldondeployments"
    server.answers["GET", crd] = (404, {"kind": "Status", "code": 404})
    with pytest.raises(KubeError, match="install the CRD first"):
        api.check_access(["ns"])
    server.answers["GET", "/apis/machinelearning.seldon.io/v1alpha2/seldondeployments"] = (403, {"code": 403})
    with pytest.raises(KubeError, match="may not list seldondeployments cluster-wide"):
        api.check_access(None)


# --- the command ---------------------------------------------------------------------------------------


def test_operator_command_help() -> None:
    result = CliRunner().invoke(cli, ["k8s", "operator", "--help"])
    assert result.exit_code == 0
    assert "--namespace" in result.output and "--liveness-port" in result.output


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--liveness-port", "0"], "error: --liveness-port must be between 1 and 65535, got 0\n"),
        (["-n", "a", "--all-namespaces"], "error: give --namespace or --all-namespaces, not both\n"),
        (["-n", "Not_A_Namespace"], "error: 'Not_A_Namespace' is not a namespace name"),
    ],
)
def test_operator_command_refuses_bad_options_in_one_sentence(args: list[str], sentence: str) -> None:
    result = CliRunner().invoke(cli, ["k8s", "operator", *args])
    assert result.exit_code == 1
    assert result.output.startswith(sentence) and result.output.count("\n") == 1


def test_operator_command_without_a_cluster_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    monkeypatch.setenv("SELDON_WATCH_NAMESPACE", "models")
    result = CliRunner().invoke(cli, ["k8s", "operator"])
    assert result.exit_code == 1
    assert (
        result.output.startswith("error: Kubernetes API: no cluster credentials")
        and result.output.count("\n") == 1
    )


# --- the OAuth front end of an install with --with-apife -------------------------------------------


def test_with_the_front_end_every_deployment_is_stored_for_it_and_removed_on_delete(
    redis_url: str,
) -> None:
    import redis

    from seldon_serving.deploy.records import Records
    from seldon_serving.servers.oauth import OAuthService
    from seldon_serving.state import open_store

    store_url = redis_url.rsplit("/", 1)[0] + "/14"
    redis.Redis.from_url(store_url).flushdb()
    kube = FakeKube()
    operator.configure(
        kube, RenderOptions(**{**OPTIONS.__dict__, "front_end": True, "state_store": store_url})
    )
    try:
        manifest = prototype("mymodel", "serve-simple", oauth_key="key", oauth_secret="secret")
        body = created(kube, manifest)
        store = open_store(store_url)
        try:
            records = Records(store, OAuthService(store))
            record = records.get("default", "mymodel")
            assert record is not None
            (predictor,) = record.manifest["spec"]["predictors"]
            assert predictor["annotations"]["seldon.io/engine-address"] == (
                "mymodel-mymodel.default.svc.cluster.local.:8000"
            )
            # The front end's OAuth client: key:secret gets a token for this deployment.
            basic = "Basic " + base64.b64encode(b"key:secret").decode()
            token = OAuthService(store).issue(basic, b"grant_type=client_credentials")
            assert OAuthService(store).check(token["access_token"]).deployment == "mymodel"
            operator.on_sdep_event(
                **kopf_kwargs(body, type="DELETED", event={"type": "DELETED", "object": body})
            )
            assert records.get("default", "mymodel") is None
        finally:
            store.close()
    finally:
        operator.configure(None, None)
