"""`seldon k8s install` and `seldon k8s render`: every object they print is one Kubernetes
accepts (its own OpenAPI schemas, strict), and the install gives the operator what it needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from seldon_serving import __version__
from seldon_serving.cli.main import cli
from seldon_serving.deploy.k8s import config
from seldon_serving.deploy.k8s.install import InstallError, InstallOptions, install_objects
from seldon_serving.deploy.k8s.render import RenderOptions, render_manifest
from seldon_serving.engine.plan import server_named
from seldon_serving.spec import GROUP, PREPACKAGED_SERVERS, PROTOTYPES, ManifestError, generate, iter_units
from seldon_serving.spec import parse_deployment as parse

K8S_VERSIONS = sorted({"1.29.0", kubernetes_validate.latest_version()})
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MOCK = "seldonio/mock_classifier:1.0"
CLUSTER_SCOPED = {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}

# Each install option of the issue, alone, and a few together.
OPTION_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "cluster-wide": {"single_namespace": False},
    "no-rbac": {"rbac": False},
    "with-apife": {"apife": True},
    "apife-LoadBalancer": {"apife": True, "apife_service_type": "LoadBalancer"},
    "apife-ClusterIP": {"apife": True, "apife_service_type": "ClusterIP"},
    "with-ambassador": {"ambassador": True},
    "ambassador-cluster-wide": {"ambassador": True, "single_namespace": False},
    "ambassador-no-rbac": {"ambassador": True, "rbac": False},
    "registry-repository-version": {
        "registry": "gcr.io:443",
        "repository": "acme/ml",
        "seldon_version": "1.2.3",
    },
    "image": {"image": "localhost:5000/mine/seldon-serving:dev"},
    "engine-user": {"engine_user": 1000},
    "engine-service-account": {"engine_service_account": "seldon-engine"},
    "grpc-max-message-size": {"grpc_max_message_size": 16 * 1024 * 1024},
    "name-namespace": {"name": "ml", "namespace": "models"},
    "longest-name": {"name": "a" * 46, "namespace": "b" * 63, "apife": True, "ambassador": True},
    "everything": {
        "name": "prod",
        "namespace": "serving",
        "single_namespace": False,
        "apife": True,
        "ambassador": True,
        "ambassador_service_type": "LoadBalancer",
        "registry": "registry.example.com",
        "seldon_version": "0.1.0-rc1",
        "engine_user": 2000,
        "grpc_max_message_size": 100,
        "redis_image": "redis:7.2.5",
        "ambassador_image": "quay.io/datawire/ambassador:0.40.0",
    },
}


def valid_everywhere(obj: dict[str, Any]) -> None:
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(obj, version, strict=True)


def _find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def _kinds(objects: list[dict[str, Any]]) -> list[str]:
    return [o["kind"] for o in objects]


# --- every object the install prints is a valid Kubernetes object ----------------------------------


@pytest.mark.parametrize("options", OPTION_SETS.values(), ids=OPTION_SETS.keys())
def test_every_install_object_validates(options: dict[str, Any]) -> None:
    objects = install_objects(InstallOptions(**options))
    for obj in objects:
        valid_everywhere(obj)
    names = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names)), "two objects of one kind and name"
    for obj in objects:
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "seldon-serving"
        assert ("namespace" in obj["metadata"]) == (obj["kind"] not in CLUSTER_SCOPED), obj["kind"]
        if "namespace" in obj["metadata"]:
            assert obj["metadata"]["namespace"] == options.get("namespace", "default")
        if obj["kind"] == "Service":
            assert len(obj["metadata"]["name"]) <= 63


def test_the_validation_can_fail() -> None:
    deployment = _find(install_objects(), "Deployment", "seldon-seldon-operator")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] = [8080]
    with pytest.raises(kubernetes_validate.ValidationError):
        valid_everywhere(deployment)
    service = _find(install_objects(), "Service", "seldon-redis")
    service["spec"]["portz"] = []  # strict: a field Services do not have
    with pytest.raises(kubernetes_validate.ValidationError):
        valid_everywhere(service)


@pytest.mark.parametrize("single_namespace", [True, False])
def test_the_order_applies_cleanly(single_namespace: bool) -> None:
    objects = install_objects(InstallOptions(apife=True, ambassador=True, single_namespace=single_namespace))
    assert objects[0]["kind"] == "CustomResourceDefinition"
    seen: set[tuple[str, str]] = set()
    for obj in objects:
        if obj["kind"] == "Deployment":
            # what its pods need exists before they are created
            pod = obj["spec"]["template"]["spec"]
            if "serviceAccountName" in pod:
                assert ("ServiceAccount", pod["serviceAccountName"]) in seen
            for volume in pod.get("volumes", []):
                if "configMap" in volume:
                    assert ("ConfigMap", volume["configMap"]["name"]) in seen
        if obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            assert (obj["roleRef"]["kind"], obj["roleRef"]["name"]) in seen
            for subject in obj["subjects"]:
                assert ("ServiceAccount", subject["name"]) in seen
        seen.add((obj["kind"], obj["metadata"]["name"]))
    assert _kinds(objects).count("Deployment") == 4  # Redis, the operator, the front end, Ambassador


def test_output_is_deterministic() -> None:
    options = InstallOptions(apife=True, ambassador=True)
    assert install_objects(options) == install_objects(options)
    for obj in install_objects(options):
        assert not {"creationTimestamp", "uid", "resourceVersion"} & set(obj["metadata"])


# --- the operator ----------------------------------------------------------------------------------


def _operator(objects: list[dict[str, Any]], name: str = "seldon") -> dict[str, Any]:
    return _find(objects, "Deployment", f"{name}-seldon-operator")


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_default_install_runs_the_operator_on_our_image() -> None:
    objects = install_objects()
    deployment = _operator(objects)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == f"seldonio-serving/seldon-serving:{__version__}"
    assert container["command"] == ["seldon", "k8s", "operator"]
    assert container["args"] == ["--namespace", "default", "--liveness-port", "8080"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert pod["serviceAccountName"] == "seldon-seldon-operator"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 8888
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    mount = container["volumeMounts"][0]
    assert mount["mountPath"] == config.IMAGES_MOUNT_DIR and mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == "seldon-seldon-images"
    configmap = _find(objects, "ConfigMap", "seldon-seldon-images")
    assert (
        json.loads(configmap["data"][config.IMAGES_KEY])["seldonio/mock_classifier"]["serviceType"] == "MODEL"
    )
    env = _env(container)
    assert env[config.WATCH_NAMESPACE] == "default"
    assert env[config.INSTALL_NAMESPACE] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_cluster_wide_operator_watches_all_namespaces() -> None:
    (container,) = _operator(install_objects(InstallOptions(single_namespace=False)))["spec"]["template"][
        "spec"
    ]["containers"]
    assert container["args"] == ["--all-namespaces", "--liveness-port", "8080"]
    assert config.WATCH_NAMESPACE not in _env(container)
    assert _env(container)[config.SINGLE_NAMESPACE] == "false"


@pytest.mark.parametrize(
    ("options", "image"),
    [
        ({}, f"seldonio-serving/seldon-serving:{__version__}"),
        ({"seldon_version": "1.2.3"}, "seldonio-serving/seldon-serving:1.2.3"),
        ({"registry": "gcr.io", "repository": "acme/ml"}, f"gcr.io/acme/ml/seldon-serving:{__version__}"),
        ({"registry": "gcr.io", "image": "me/custom:1"}, "me/custom:1"),
    ],
)
def test_the_runtime_image_reaches_operator_engines_and_front_end(
    options: dict[str, Any], image: str
) -> None:
    install = InstallOptions(apife=True, **options)
    objects = install_objects(install)
    (operator,) = _operator(objects)["spec"]["template"]["spec"]["containers"]
    (apife,) = _find(objects, "Deployment", "seldon-seldon-apiserver")["spec"]["template"]["spec"][
        "containers"
    ]
    assert operator["image"] == apife["image"] == image
    assert _env(operator)[config.RUNTIME_IMAGE] == image


@pytest.mark.parametrize("apife", [False, True])
def test_the_operator_reads_back_what_the_install_wrote(tmp_path: Path, apife: bool) -> None:
    # The operator's env, with the downward API and the ConfigMap mount done by hand, gives
    # the operator the RenderOptions the install meant.
    install = InstallOptions(
        name="ml",
        namespace="models",
        single_namespace=False,
        engine_user=1234,
        grpc_max_message_size=99,
        apife=apife,
    )
    objects = install_objects(install)
    (container,) = _operator(objects, "ml")["spec"]["template"]["spec"]["containers"]
    configmap = _find(objects, "ConfigMap", config.images_configmap_name("ml"))
    (tmp_path / config.IMAGES_KEY).write_text(configmap["data"][config.IMAGES_KEY])
    environ = {e["name"]: e.get("value", "") for e in container["env"]}
    environ[config.INSTALL_NAMESPACE] = "models"  # what the fieldRef resolves to
    environ[config.BUILTIN_IMAGES_FILE] = str(tmp_path / config.IMAGES_KEY)
    read = config.options_from_env(environ)
    assert read == install.render_options()
    assert read.front_end is apife  # the operator stores deployments for the front end only if there is one
    assert read.store() == "redis://ml-redis.models:6379/0"


def test_engine_user_and_message_size_reach_what_the_operator_renders() -> None:
    install = InstallOptions(engine_user=1000, grpc_max_message_size=12345)
    sdep = generate("serve-simple", "mymodel", image=MOCK)["items"][0]
    objects = render_manifest(sdep, None, install.render_options())
    engine = next(
        c
        for o in objects
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
        if c["name"] == "seldon-container-engine"
    )
    assert engine["securityContext"]["runAsUser"] == 1000
    assert {"name": "SELDON_MAX_MESSAGE_SIZE", "value": "12345"} in engine["env"]
    assert {"name": "SELDON_STATE_STORE", "value": "redis://seldon-redis.default:6379/0"} in engine["env"]


def test_the_engine_service_account_reaches_the_engines_pods_through_the_operators_env() -> None:
    install = InstallOptions(engine_service_account="seldon-engine")
    (operator,) = [
        o
        for o in install_objects(install)
        if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("operator")
    ]
    env = {
        e["name"]: e.get("value", "") for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    env.pop(config.BUILTIN_IMAGES_FILE)  # the ConfigMap's mount: not on this machine
    options = config.options_from_env(env)
    assert options.engine_service_account == "seldon-engine"
    sdep = generate("abtest", "myab", image_a=MOCK, image_b=MOCK)["items"][0]
    pods = {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]
        for o in render_manifest(sdep, None, options)
        if o["kind"] == "Deployment"
    }
    with_engine = [
        p for p in pods.values() if any(c["name"] == "seldon-container-engine" for c in p["containers"])
    ]
    assert [p.get("serviceAccountName") for p in with_engine] == ["seldon-engine"]
    assert [p.get("serviceAccountName") for p in pods.values() if p not in with_engine] == [None]


# --- RBAC: the operator may do what it does, where it does it ----------------------------------------

NAMESPACED_NEEDS = [
    *[(GROUP, "seldondeployments", v) for v in ("get", "list", "watch", "patch", "update")],
    (GROUP, "seldondeployments/status", "patch"),
    (GROUP, "seldondeployments/finalizers", "update"),
    *[
        (group, resource, verb)
        for group, resource in (
            ("apps", "deployments"),
            ("", "services"),
            ("autoscaling", "horizontalpodautoscalers"),
        )
        for verb in ("get", "list", "watch", "create", "update", "patch", "delete")
    ],
    ("", "events", "create"),
    ("", "events", "patch"),
]


def _rule_allows(rule: dict[str, Any], group: str, resource: str, verb: str, name: str | None) -> bool:
    return (
        group in rule["apiGroups"]
        and resource in rule["resources"]
        and verb in rule["verbs"]
        and ("resourceNames" not in rule or name in rule["resourceNames"])
    )


def allowed(
    objects: list[dict[str, Any]],
    account: tuple[str, str],
    group: str,
    resource: str,
    verb: str,
    namespace: str | None,
    name: str | None = None,
) -> bool:
    """Kubernetes' RBAC decision for a ServiceAccount (namespace, name): a ClusterRoleBinding
    grants its ClusterRole everywhere, a RoleBinding its Role in its own namespace only."""
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects}
    subject = {"kind": "ServiceAccount", "namespace": account[0], "name": account[1]}
    for binding in objects:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding") or subject not in binding["subjects"]:
            continue
        ref = binding["roleRef"]
        scope = binding["metadata"].get("namespace")
        if binding["kind"] == "RoleBinding" and scope != namespace:
            continue
        role = roles.get((ref["kind"], scope if ref["kind"] == "Role" else None, ref["name"]))
        if role and any(_rule_allows(r, group, resource, verb, name) for r in role["rules"]):
            return True
    return False


def test_single_namespace_operator_may_act_in_its_namespace_only() -> None:
    objects = install_objects()
    account = ("default", "seldon-seldon-operator")
    for group, resource, verb in NAMESPACED_NEEDS:
        assert allowed(objects, account, group, resource, verb, "default"), (group, resource, verb)
        assert not allowed(objects, account, group, resource, verb, "elsewhere"), (group, resource, verb)
    # nothing cluster-wide: kopf runs standalone with scanning off (no CRD or namespace watch)
    assert not {"ClusterRole", "ClusterRoleBinding"} & set(_kinds(objects))
    assert not allowed(objects, account, "", "secrets", "get", "default")
    assert not allowed(objects, account, "", "pods", "delete", "default")
    assert not allowed(objects, account, "", "configmaps", "get", "default")


def test_cluster_wide_operator_may_act_everywhere() -> None:
    objects = install_objects(InstallOptions(single_namespace=False, namespace="seldon-system"))
    account = ("seldon-system", "seldon-seldon-operator")
    for group, resource, verb in NAMESPACED_NEEDS:
        for namespace in ("seldon-system", "team-a"):
            assert allowed(objects, account, group, resource, verb, namespace), (group, resource, verb)
    assert not {"Role", "RoleBinding"} & set(_kinds(objects))
    assert _find(objects, "ClusterRole")["metadata"]["name"] == "seldon-seldon-operator-seldon-system"
    assert not allowed(objects, account, "", "secrets", "list", "team-a")


def test_the_operator_asks_for_no_more_than_it_needs() -> None:
    # Every (group, resource, verb) granted is one the operator uses.
    needed = set(NAMESPACED_NEEDS) | {(GROUP, "seldondeployments/status", v) for v in ("get", "update")}
    for single in (True, False):
        objects = install_objects(InstallOptions(single_namespace=single))
        role = _find(objects, "Role" if single else "ClusterRole")
        granted = {
            (group, resource, verb)
            for rule in role["rules"]
            for group in rule["apiGroups"]
            for resource in rule["resources"]
            for verb in rule["verbs"]
        }
        assert granted <= needed, granted - needed


def test_the_rbac_check_can_say_no() -> None:
    objects = install_objects()
    role = _find(objects, "Role", "seldon-seldon-operator")
    role["rules"] = [r for r in role["rules"] if r["resources"] != ["services"]]
    assert not allowed(objects, ("default", "seldon-seldon-operator"), "", "services", "create", "default")


def test_no_rbac_leaves_accounts_to_the_user() -> None:
    objects = install_objects(InstallOptions(rbac=False, ambassador=True))
    assert not {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"} & set(
        _kinds(objects)
    )
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        assert "serviceAccountName" not in deployment["spec"]["template"]["spec"]


# --- Redis, the OAuth front end, Ambassador ---------------------------------------------------------


def _store_service(objects: list[dict[str, Any]], url: str) -> dict[str, Any]:
    """The Service a redis://<svc>.<ns>:<port>/0 URL reaches, checked to exist with that port."""
    host, _, rest = url.removeprefix("redis://").partition(":")
    service_name, _, namespace = host.partition(".")
    service = _find(objects, "Service", service_name)
    assert service["metadata"]["namespace"] == namespace
    assert int(rest.split("/")[0]) in [p["port"] for p in service["spec"]["ports"]]
    return service


def test_redis_is_where_engines_and_front_end_keep_state() -> None:
    install = InstallOptions(name="ml", namespace="models", apife=True)
    objects = install_objects(install)
    service = _store_service(objects, install.render_options().store())
    redis = _find(objects, "Deployment", "ml-redis")
    assert redis["spec"]["template"]["metadata"]["labels"].items() >= service["spec"]["selector"].items()
    (container,) = redis["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "redis:7.2"
    assert container["ports"][0]["containerPort"] == 6379
    (apife,) = _find(objects, "Deployment", "ml-seldon-apiserver")["spec"]["template"]["spec"]["containers"]
    store = apife["command"][apife["command"].index("--state-store") + 1]
    assert store == "redis://ml-redis.models:6379/0"
    _store_service(objects, store)


@pytest.mark.parametrize("service_type", ["NodePort", "LoadBalancer", "ClusterIP"])
def test_apife_is_seldon_serve_with_oauth(service_type: str) -> None:
    objects = install_objects(
        InstallOptions(apife=True, apife_service_type=service_type, grpc_max_message_size=777)
    )
    deployment = _find(objects, "Deployment", "seldon-seldon-apiserver")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[:4] == ["seldon", "serve", "--oauth", "--cluster-engines"]
    for flag, value in (("--http-port", "8080"), ("--grpc-port", "5000"), ("--max-message-size", "777")):
        assert command[command.index(flag) + 1] == value
    service = _find(objects, "Service", "seldon-seldon-apiserver")
    assert service["spec"]["type"] == service_type
    assert {(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        ("http", 8080, 8080),
        ("grpc", 5000, 5000),
    }
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels.items() >= service["spec"]["selector"].items()


def test_no_front_ends_unless_asked() -> None:
    names = {o["metadata"]["name"] for o in install_objects()}
    assert "seldon-seldon-apiserver" not in names and "seldon-ambassador" not in names


@pytest.mark.parametrize("single_namespace", [True, False])
def test_ambassador_reads_the_mappings_render_writes(single_namespace: bool) -> None:
    objects = install_objects(InstallOptions(ambassador=True, single_namespace=single_namespace))
    service = _find(objects, "Service", "seldon-ambassador")
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
    (module,) = yaml.safe_load_all(service["metadata"]["annotations"]["getambassador.io/config"])
    assert module["kind"] == "Module" and module["name"] == "ambassador"
    deployment = _find(objects, "Deployment", "seldon-ambassador")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    # as a non-root user Ambassador must listen where the Service sends traffic
    assert module["config"]["service_port"] == 8080
    assert 8080 in [p["containerPort"] for p in container["ports"]]
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["image"] == "quay.io/datawire/ambassador:0.40.2"
    env = _env(container)
    account = ("default", "seldon-ambassador")
    if single_namespace:
        assert env["AMBASSADOR_SINGLE_NAMESPACE"] == "true"
        assert allowed(objects, account, "", "services", "watch", "default")
        assert not allowed(objects, account, "", "services", "watch", "team-a")
    else:
        assert "AMBASSADOR_SINGLE_NAMESPACE" not in env
        assert allowed(objects, account, "", "services", "watch", "team-a")
    for resource in ("services", "endpoints", "secrets"):
        assert allowed(objects, account, "", resource, "list", "default")


# --- what render prints validates too ---------------------------------------------------------------

_PROTOTYPE_OPTIONS: dict[str, dict[str, Any]] = {
    "serve-simple": {"image": MOCK},
    "abtest": {"image_a": MOCK, "image_b": MOCK},
    "mab": {"image_a": MOCK, "image_b": "seldonio/mock_classifier:1.1"},
    "outlier-detector": {"image": MOCK},
}
_RENDER_OPTIONS = {
    "defaults": RenderOptions(),
    "cluster-wide install": InstallOptions(
        name="ml", namespace="models", single_namespace=False
    ).render_options(),
    # what the operator applies: owned by the SeldonDeployment
    "with owner": RenderOptions(owner_uid="6f1c2a52-8d3e-4b1a-9c55-0e2f3a4b5c6d"),
}


@pytest.mark.parametrize("render_options", _RENDER_OPTIONS.values(), ids=_RENDER_OPTIONS.keys())
@pytest.mark.parametrize("version", ["v1alpha1", "v1alpha2"])
@pytest.mark.parametrize("prototype", PROTOTYPES)
def test_rendered_prototypes_validate(prototype: str, version: str, render_options: RenderOptions) -> None:
    doc = generate(
        prototype, "my-model", api_version=version, pvc_name="data", **_PROTOTYPE_OPTIONS[prototype]
    )
    sdeps = [item for item in doc["items"] if item["kind"] == "SeldonDeployment"]
    for obj in [item for item in doc["items"] if item["kind"] != "SeldonDeployment"]:
        valid_everywhere(obj)  # the PersistentVolumeClaim of --pvcName
    objects = render_manifest(sdeps[0], None, render_options)
    assert {"Deployment", "Service"} <= set(_kinds(objects))
    for obj in objects:
        valid_everywhere(obj)


def _example_deployments() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(EXAMPLES.rglob("*")):
        if path.suffix not in (".yaml", ".yml", ".json"):
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            items = doc.get("items", []) if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]
            out += [
                (str(path.relative_to(EXAMPLES)), item)
                for item in items
                if isinstance(item, dict) and item.get("kind") == "SeldonDeployment"
            ]
    return out


EXAMPLE_DEPLOYMENTS = _example_deployments()


def _prepackaged_without_endpoint(manifest: dict[str, Any]) -> bool:
    """Render refuses these (a prepackaged server we do not implement, such as TENSORFLOW_SERVER,
    needs a container we do not make); our own model servers render."""
    return any(
        unit.implementation in PREPACKAGED_SERVERS
        and server_named(unit.implementation) is None
        and not (unit.endpoint and unit.endpoint.service_host and unit.endpoint.service_port)
        for predictor in parse(manifest).spec.predictors
        for _, unit in iter_units(predictor.graph)
    )


def test_the_examples_are_there() -> None:
    assert len(EXAMPLE_DEPLOYMENTS) >= 8


@pytest.mark.parametrize(("source", "manifest"), EXAMPLE_DEPLOYMENTS, ids=[e[0] for e in EXAMPLE_DEPLOYMENTS])
def test_rendered_examples_validate(source: str, manifest: dict[str, Any]) -> None:
    if _prepackaged_without_endpoint(manifest):
        with pytest.raises(ManifestError, match="does not run on Kubernetes here yet"):
            render_manifest(manifest, None)
        return
    for obj in render_manifest(manifest, None):
        valid_everywhere(obj)


# --- the command --------------------------------------------------------------------------------------

_CLI_CASES: list[tuple[list[str], InstallOptions]] = [
    ([], InstallOptions()),
    (
        [
            "--name",
            "prod",
            "-n",
            "serving",
            "--cluster-wide",
            "--no-rbac",
            "--with-apife",
            "--apife-service-type",
            "LoadBalancer",
            "--with-ambassador",
            "--ambassador-service-type",
            "ClusterIP",
            "--seldon-version",
            "2.0.0",
            "--registry",
            "gcr.io",
            "--repository",
            "acme",
            "--engine-user",
            "1001",
            "--grpc-max-message-size",
            "1048576",
            "--redis-image",
            "redis:7.2.5",
            "--ambassador-image",
            "quay.io/datawire/ambassador:0.40.0",
        ],
        InstallOptions(
            name="prod",
            namespace="serving",
            single_namespace=False,
            rbac=False,
            apife=True,
            apife_service_type="LoadBalancer",
            ambassador=True,
            ambassador_service_type="ClusterIP",
            seldon_version="2.0.0",
            registry="gcr.io",
            repository="acme",
            engine_user=1001,
            grpc_max_message_size=1048576,
            redis_image="redis:7.2.5",
            ambassador_image="quay.io/datawire/ambassador:0.40.0",
        ),
    ),
    (["--image", "me/mine:1", "--with-ambassador"], InstallOptions(image="me/mine:1", ambassador=True)),
]


@pytest.mark.parametrize(("args", "options"), _CLI_CASES, ids=["defaults", "every-option", "image"])
def test_the_command_prints_the_install_as_yaml(args: list[str], options: InstallOptions) -> None:
    result = CliRunner().invoke(cli, ["k8s", "install", *args])
    assert result.exit_code == 0, result.output
    assert list(yaml.safe_load_all(result.output)) == install_objects(options)
    assert "&id" not in result.output  # no YAML anchors: each document stands alone


def test_the_command_prints_a_list_as_json() -> None:
    result = CliRunner().invoke(cli, ["k8s", "install", "--with-apife", "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "apiVersion": "v1",
        "kind": "List",
        "items": install_objects(InstallOptions(apife=True)),
    }


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--name", "Seldon_1"], "--name 'Seldon_1' must be at most 46 lowercase letters"),
        (["--name", "a" * 47], "must be at most 46"),
        (["--name", "1seldon"], "starting with a letter"),
        (["--namespace", "My-Namespace"], "--namespace 'My-Namespace' must be"),
        (["--seldon-version", "1.0 beta"], "--seldon-version '1.0 beta' is not an image tag"),
        (["--registry", "https://gcr.io"], "--registry 'https://gcr.io' must be a host name"),
        (["--repository", "Acme"], "--repository 'Acme' must be lowercase"),
        (["--image", "my image"], "--image 'my image' must be an image reference"),
    ],
)
def test_bad_values_are_one_sentence(args: list[str], words: str) -> None:
    result = CliRunner().invoke(cli, ["k8s", "install", *args])
    assert result.exit_code == 1
    assert result.output.startswith(f"error: {args[0]} ")
    assert words in result.output
    assert result.output.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["--engine-user", "0"],
        ["--grpc-max-message-size", "-1"],
        ["--apife-service-type", "Ingress"],
        ["-o", "xml"],
    ],
)
def test_out_of_range_values_are_usage_errors(args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["k8s", "install", *args])
    assert result.exit_code == 2
    assert "Invalid value" in result.output


def test_install_options_refuse_what_kubernetes_would() -> None:
    with pytest.raises(InstallError, match="non-root"):
        InstallOptions(engine_user=0)
    with pytest.raises(InstallError, match="--apife-service-type 'Ingress'"):
        InstallOptions(apife_service_type="Ingress")
    assert InstallOptions(name="a" * 46).name == "a" * 46


def test_the_commands_the_pods_run_are_ones_our_cli_takes() -> None:
    # Parsed by the real commands (not run): a renamed or missing option fails here, not in a pod.
    from seldon_serving.cli.k8s_operator import operator_command
    from seldon_serving.cli.serve import serve_command

    for single in (True, False):
        objects = install_objects(InstallOptions(apife=True, single_namespace=single))
        (operator,) = _operator(objects)["spec"]["template"]["spec"]["containers"]
        assert operator["command"] == ["seldon", "k8s", "operator"]
        context = operator_command.make_context("operator", list(operator["args"]))
        assert context.params["liveness_port"] == 8080
        assert context.params["all_namespaces"] is not single
        assert context.params["namespaces"] == (("default",) if single else ())
        (apife,) = _find(objects, "Deployment", "seldon-seldon-apiserver")["spec"]["template"]["spec"][
            "containers"
        ]
        context = serve_command.make_context("serve", list(apife["command"][2:]))
        assert context.params["oauth"] is True and context.params["cluster_engines"] is True
        assert context.params["state_store"] == "redis://seldon-redis.default:6379/0"
        assert (context.params["http_port"], context.params["grpc_port"]) == (8080, 5000)
        assert str(context.params["state_dir"]) == "/var/lib/seldon-serving"


def test_the_help_names_the_real_defaults() -> None:
    from seldon_serving.deploy.k8s import install

    result = CliRunner().invoke(cli, ["k8s", "install", "--help"])
    text = " ".join(result.output.split())
    for default in (install.DEFAULT_REDIS_IMAGE, install.DEFAULT_AMBASSADOR_IMAGE, __version__):
        assert default in text
