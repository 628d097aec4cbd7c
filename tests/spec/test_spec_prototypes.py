"""The seed's prototypes must render exactly what Kubeflow's jsonnet rendered (SELDON-REFERENCE 6.4)."""

from __future__ import annotations

import copy
import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml

from seldon_serving.spec import (
    ManifestError,
    convert,
    generate,
    load_documents,
    seldon_version_to_api_version,
    validate,
)

MOCK = "seldonio/mock_classifier:1.0"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "manifests"

# --- 6.4, copied literally: the whole mab item and the predictors of the other three ---------------

MAB_V1ALPHA2 = {
    "apiVersion": "machinelearning.seldon.io/v1alpha2",
    "kind": "SeldonDeployment",
    "metadata": {"labels": {"app": "seldon"}, "name": "myab", "namespace": "kubeflow"},
    "spec": {
        "annotations": {"deployment_version": "v1", "project_name": "myab"},
        "name": "myab",
        "oauth_key": "",
        "oauth_secret": "",
        "predictors": [
            {
                "componentSpecs": [
                    {
                        "metadata": {"labels": {"version": "v1"}},
                        "spec": {
                            "containers": [
                                {
                                    "image": "seldonio/mock_classifier:1.0",
                                    "imagePullPolicy": "IfNotPresent",
                                    "name": "classifier-1",
                                    "volumeMounts": [],
                                }
                            ],
                            "imagePullSecrets": [],
                            "terminationGracePeriodSeconds": 1,
                            "volumes": [],
                        },
                    },
                    {
                        "metadata": {"labels": {"version": "v2"}},
                        "spec": {
                            "containers": [
                                {
                                    "image": "seldonio/mock_classifier:1.0",
                                    "imagePullPolicy": "IfNotPresent",
                                    "name": "classifier-2",
                                    "volumeMounts": [],
                                }
                            ],
                            "imagePullSecrets": [],
                            "terminationGracePeriodSeconds": 1,
                            "volumes": [],
                        },
                    },
                    {
                        "spec": {
                            "containers": [
                                {
                                    "image": "seldonio/mab_epsilon_greedy:1.1",
                                    "imagePullPolicy": "IfNotPresent",
                                    "name": "eg-router",
                                }
                            ],
                            "terminationGracePeriodSeconds": 1,
                        }
                    },
                ],
                "graph": {
                    "children": [
                        {
                            "children": [],
                            "endpoint": {"type": "REST"},
                            "name": "classifier-1",
                            "type": "MODEL",
                        },
                        {
                            "children": [],
                            "endpoint": {"type": "REST"},
                            "name": "classifier-2",
                            "type": "MODEL",
                        },
                    ],
                    "name": "eg-router",
                    "parameters": [
                        {"name": "n_branches", "type": "INT", "value": "2"},
                        {"name": "epsilon", "type": "FLOAT", "value": "0.2"},
                        {"name": "verbose", "type": "BOOL", "value": "1"},
                    ],
                    "type": "ROUTER",
                },
                "name": "myab",
                "replicas": 1,
            }
        ],
    },
}

SERVE_SIMPLE_PREDICTOR = {
    "annotations": {"predictor_version": "v1"},
    "componentSpecs": [
        {
            "spec": {
                "containers": [
                    {
                        "image": "seldonio/mock_classifier:1.0",
                        "imagePullPolicy": "IfNotPresent",
                        "name": "mymodel",
                        "volumeMounts": [],
                    }
                ],
                "imagePullSecrets": [],
                "terminationGracePeriodSeconds": 1,
                "volumes": [],
            }
        }
    ],
    "graph": {"children": [], "endpoint": {"type": "REST"}, "name": "mymodel", "type": "MODEL"},
    "name": "mymodel",
    "replicas": 1,
}

ABTEST_PREDICTOR = {
    "componentSpecs": [
        {
            "metadata": {"labels": {"version": "v2"}},
            "spec": {
                "containers": [
                    {
                        "image": "seldonio/mock_classifier:1.0",
                        "imagePullPolicy": "IfNotPresent",
                        "name": "classifier-1",
                        "volumeMounts": [],
                    }
                ],
                "imagePullSecrets": [],
                "terminationGracePeriodSeconds": 1,
                "volumes": [],
            },
        },
        {
            "metadata": {"labels": {"version": "v2"}},
            "spec": {
                "containers": [
                    {
                        "image": "seldonio/mock_classifier:1.0",
                        "imagePullPolicy": "IfNotPresent",
                        "name": "classifier-2",
                        "volumeMounts": [],
                    }
                ],
                "terminationGracePeriodSeconds": 1,
                "volumes": [],
            },
        },
    ],
    "graph": {
        "children": [
            {"children": [], "endpoint": {"type": "REST"}, "name": "classifier-1", "type": "MODEL"},
            {"children": [], "endpoint": {"type": "REST"}, "name": "classifier-2", "type": "MODEL"},
        ],
        "endpoint": {},
        "implementation": "RANDOM_ABTEST",
        "name": "random-ab-test",
        "parameters": [{"name": "ratioA", "type": "FLOAT", "value": "0.5"}],
    },
    "name": "myab",
    "replicas": 1,
}

OUTLIER_PREDICTOR = {
    "annotations": {"predictor_version": "v1"},
    "componentSpecs": [
        {
            "spec": {
                "containers": [
                    {
                        "image": "seldonio/mock_classifier:1.0",
                        "imagePullPolicy": "IfNotPresent",
                        "name": "mymodel",
                        "volumeMounts": [],
                    }
                ],
                "imagePullSecrets": [],
                "terminationGracePeriodSeconds": 1,
                "volumes": [],
            }
        },
        {
            "spec": {
                "containers": [
                    {
                        "image": "seldonio/outlier_mahalanobis:0.3",
                        "imagePullPolicy": "IfNotPresent",
                        "name": "outlier-detector",
                    }
                ],
                "terminationGracePeriodSeconds": 1,
            }
        },
    ],
    "graph": {
        "children": [{"children": [], "endpoint": {"type": "REST"}, "name": "mymodel", "type": "MODEL"}],
        "endpoint": {"type": "REST"},
        "name": "outlier-detector",
        "type": "TRANSFORMER",
    },
    "name": "mymodel",
    "replicas": 1,
}


def _with_predictor(name: str, predictor: dict[str, Any]) -> dict[str, Any]:
    """6.4: the other three differ from mab only in the names and in spec.predictors[0]."""
    doc = copy.deepcopy(MAB_V1ALPHA2)
    doc["metadata"]["name"] = doc["spec"]["name"] = name
    doc["spec"]["annotations"]["project_name"] = name
    doc["spec"]["predictors"] = [predictor]
    return doc


def _list(*items: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": list(items)}


def test_mab_v1alpha2_matches_the_kubeflow_rendering() -> None:
    got = generate("mab", "myab", image_a=MOCK, image_b=MOCK, namespace="kubeflow")
    assert got == _list(MAB_V1ALPHA2)


@pytest.mark.parametrize(
    ("prototype", "name", "predictor"),
    [
        ("serve-simple", "mymodel", SERVE_SIMPLE_PREDICTOR),
        ("abtest", "myab", ABTEST_PREDICTOR),
        ("outlier-detector", "mymodel", OUTLIER_PREDICTOR),
    ],
)
def test_other_v1alpha2_prototypes_match_the_kubeflow_rendering(
    prototype: str, name: str, predictor: dict[str, Any]
) -> None:
    got = generate(prototype, name, image=MOCK, image_a=MOCK, image_b=MOCK, namespace="kubeflow")
    assert got == _list(_with_predictor(name, predictor))


def test_namespace_is_written_only_when_given() -> None:
    got = generate("serve-simple", "mymodel", image=MOCK)
    assert got["items"][0]["metadata"] == {"labels": {"app": "seldon"}, "name": "mymodel"}


def _v1alpha1(doc: dict[str, Any], order: list[str]) -> dict[str, Any]:
    """6.4's description of the v1alpha1 variants: one componentSpec holding every container."""
    out = copy.deepcopy(doc)
    out["apiVersion"] = "machinelearning.seldon.io/v1alpha1"
    predictor = out["spec"]["predictors"][0]
    by_name = {c["name"]: c for t in predictor["componentSpecs"] for c in t["spec"]["containers"]}
    pod = {
        "containers": [by_name[n] for n in order],
        "imagePullSecrets": [],
        "terminationGracePeriodSeconds": 1,
        "volumes": [],
    }
    del predictor["componentSpecs"]
    predictor["componentSpec"] = {"spec": pod}
    return out


@pytest.mark.parametrize(
    ("prototype", "name", "expected"),
    [
        (
            "serve-simple",
            "mymodel",
            _v1alpha1(_with_predictor("mymodel", SERVE_SIMPLE_PREDICTOR), ["mymodel"]),
        ),
        (
            "abtest",
            "myab",
            _v1alpha1(_with_predictor("myab", ABTEST_PREDICTOR), ["classifier-1", "classifier-2"]),
        ),
        ("mab", "myab", _v1alpha1(MAB_V1ALPHA2, ["classifier-1", "classifier-2", "eg-router"])),
        (
            "outlier-detector",
            "mymodel",
            _v1alpha1(_with_predictor("mymodel", OUTLIER_PREDICTOR), ["mymodel", "outlier-detector"]),
        ),
    ],
)
def test_v1alpha1_variants_put_every_container_in_one_pod(
    prototype: str, name: str, expected: dict[str, Any]
) -> None:
    got = generate(
        prototype, name, image=MOCK, image_a=MOCK, image_b=MOCK, namespace="kubeflow", api_version="v1alpha1"
    )
    assert got == _list(expected)
    # the ksonnet name selects the version too
    assert (
        generate(
            f"seldon-{prototype}-v1alpha1", name, image=MOCK, image_a=MOCK, image_b=MOCK, namespace="kubeflow"
        )
        == got
    )


def test_pvc_and_pull_secret_mount_storage_on_model_pods_only() -> None:
    got = generate("mab", "mymab", image_a="a:1", image_b="b:1", pvc_name="mypvc", image_pull_secret="sec")
    pvc, sdep = got["items"]
    assert pvc == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "mypvc"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}},
    }
    models, router = (
        sdep["spec"]["predictors"][0]["componentSpecs"][:2],
        sdep["spec"]["predictors"][0]["componentSpecs"][2],
    )
    for template in models:
        assert template["spec"]["containers"][0]["volumeMounts"] == [
            {"mountPath": "/mnt", "name": "persistent-storage"}
        ]
        assert template["spec"]["imagePullSecrets"] == [{"name": "sec"}]
        assert template["spec"]["volumes"] == [
            {"name": "persistent-storage", "volumeSource": {"persistentVolumeClaim": {"claimName": "mypvc"}}}
        ]
    assert router == {
        "spec": {
            "containers": [
                {
                    "image": "seldonio/mab_epsilon_greedy:1.1",
                    "imagePullPolicy": "IfNotPresent",
                    "name": "eg-router",
                }
            ],
            "terminationGracePeriodSeconds": 1,
        }
    }


def test_abtest_second_pod_never_gets_pull_secrets_as_in_kubeflow() -> None:
    got = generate("abtest", "myab", image_a="a:1", image_b="b:1", image_pull_secret="sec")
    first, second = got["items"][0]["spec"]["predictors"][0]["componentSpecs"]
    assert first["spec"]["imagePullSecrets"] == [{"name": "sec"}]
    assert "imagePullSecrets" not in second["spec"]


def test_options_reach_the_manifest() -> None:
    got = generate(
        "abtest",
        "myab",
        image_a="a:1",
        image_b="b:2",
        replicas=3,
        endpoint_a="GRPC",
        oauth_key="key",
        oauth_secret="secret",
    )["items"][0]
    predictor = got["spec"]["predictors"][0]
    assert predictor["replicas"] == 3
    assert [c["endpoint"]["type"] for c in predictor["graph"]["children"]] == ["GRPC", "REST"]
    assert (got["spec"]["oauth_key"], got["spec"]["oauth_secret"]) == ("key", "secret")
    assert [t["spec"]["containers"][0]["image"] for t in predictor["componentSpecs"]] == ["a:1", "b:2"]


@pytest.mark.parametrize(
    ("prototype", "kwargs", "message"),
    [
        ("abtest", {"image_b": MOCK}, "--imageA is required for abtest"),
        ("mab", {"image_a": MOCK}, "--imageB is required for mab"),
        ("serve-simple", {}, "--image is required for serve-simple"),
        ("outlier-detector", {}, "--image is required for outlier-detector"),
        ("serve-simple", {"image": MOCK, "endpoint": "SOAP"}, "--endpoint must be REST or GRPC"),
        ("serve-simple", {"image": MOCK, "replicas": -1}, "--replicas must be a whole number >= 0"),
        ("serve-simple", {"image": MOCK, "api_version": "v2"}, "--apiVersion must be one of"),
        ("canary", {"image": MOCK}, "unknown prototype 'canary'"),
    ],
)
def test_missing_or_bad_options_are_refused_clearly(
    prototype: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ManifestError) as info:
        generate(prototype, "mymodel", **kwargs)
    assert message in str(info.value)


def test_bad_deployment_name_is_refused() -> None:
    with pytest.raises(ManifestError, match="My_Model"):
        generate("serve-simple", "My_Model", image=MOCK)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.1.8", "v1alpha1"),
        ("0.1.6", "v1alpha1"),
        ("0.2.3", "v1alpha2"),
        ("0.2.5", "v1alpha2"),
        ("1.18.2", "v1alpha2"),
    ],
)
def test_seldon_version_picks_the_crd_version(version: str, expected: str) -> None:
    assert seldon_version_to_api_version(version) == expected


@pytest.mark.parametrize("prototype", ["serve-simple", "abtest", "mab", "outlier-detector"])
@pytest.mark.parametrize("version", ["v1alpha1", "v1alpha2"])
def test_every_prototype_loads_and_validates(prototype: str, version: str) -> None:
    doc = generate(
        prototype, "mymodel", image=MOCK, image_a=MOCK, image_b=MOCK, pvc_name="mypvc", api_version=version
    )
    result = load_documents(yaml.safe_dump(doc), filename="proto.yaml")
    assert result.skipped == ["PersistentVolumeClaim mypvc: not a SeldonDeployment, skipped"]
    (sdep,) = result.deployments
    validate(sdep)
    assert sdep.to_dict() == doc["items"][1]


@pytest.mark.parametrize("prototype", ["serve-simple", "abtest", "mab", "outlier-detector"])
@pytest.mark.parametrize("split", [False, True])
def test_v1alpha1_prototypes_survive_the_upgrade_round_trip(prototype: str, split: bool) -> None:
    doc = generate(prototype, "mymodel", image=MOCK, image_a=MOCK, image_b=MOCK, api_version="v1alpha1")
    upgraded = convert(doc, "v1alpha2", split=split)
    assert upgraded["items"][0]["apiVersion"] == "machinelearning.seldon.io/v1alpha2"
    assert convert(upgraded, "v1alpha1") == doc


# --- the example manifests shipped in examples/manifests/ are this generator's output ------------

# the table the regenerate script writes from: one source of truth for which files exist
_REGENERATE = runpy.run_path(str(EXAMPLES / "regenerate.py"))
SEED_EXAMPLES: dict[str, tuple[str, dict[str, str]]] = _REGENERATE["SEED_EXAMPLES"]


@pytest.mark.parametrize("name", sorted(SEED_EXAMPLES))
@pytest.mark.parametrize("version", ["v1alpha1", "v1alpha2"])
def test_example_manifests_are_up_to_date(name: str, version: str) -> None:
    prototype, kwargs = SEED_EXAMPLES[name]
    path = _REGENERATE["example_path"](EXAMPLES, name, version)
    assert yaml.safe_load(path.read_text()) == generate(prototype, name, api_version=version, **kwargs), (
        f"regenerate with: python {EXAMPLES / 'regenerate.py'}"
    )
