"""v1alpha1 <-> v1alpha2 <-> v1, the upgrade users of the seed had to do by hand."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from seldon_serving.spec import ManifestError, convert, generate, load_documents, validate

MOCK = "seldonio/mock_classifier:1.0"


def _sdep(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["items"][-1]


def test_upgrade_wraps_the_pod_template_in_a_list() -> None:
    old = _sdep(generate("outlier-detector", "myout", image=MOCK, api_version="v1alpha1"))
    new = convert(old, "v1alpha2")
    assert new["apiVersion"] == "machinelearning.seldon.io/v1alpha2"
    predictor = new["spec"]["predictors"][0]
    assert "componentSpec" not in predictor
    assert predictor["componentSpecs"] == [old["spec"]["predictors"][0]["componentSpec"]]
    # the key keeps its place, so the written YAML reads in the same order
    assert list(predictor) == [
        k.replace("componentSpec", "componentSpecs") for k in old["spec"]["predictors"][0]
    ]
    assert old["apiVersion"].endswith("v1alpha1"), "the input must not be modified"


def test_split_gives_one_template_per_container_keeping_pod_settings() -> None:
    old = _sdep(
        generate("mab", "mymab", image_a=MOCK, image_b=MOCK, image_pull_secret="sec", api_version="v1alpha1")
    )
    new = convert(old, "v1alpha2", split=True)
    templates = new["spec"]["predictors"][0]["componentSpecs"]
    assert [[c["name"] for c in t["spec"]["containers"]] for t in templates] == [
        ["classifier-1"],
        ["classifier-2"],
        ["eg-router"],
    ]
    assert all(t["spec"]["imagePullSecrets"] == [{"name": "sec"}] for t in templates)
    assert all(t["spec"]["terminationGracePeriodSeconds"] == 1 for t in templates)
    (sdep,) = load_documents(orjson.dumps(new)).deployments
    validate(sdep)


def test_downgrade_of_one_template_unwraps_it() -> None:
    new = _sdep(generate("serve-simple", "mymodel", image=MOCK))
    old = convert(new, "v1alpha1")
    assert old["spec"]["predictors"][0]["componentSpec"] == new["spec"]["predictors"][0]["componentSpecs"][0]
    assert convert(old, "v1alpha2") == new


def test_downgrade_merges_templates_whose_pod_settings_agree() -> None:
    new = _sdep(generate("mab", "mymab", image_a=MOCK, image_b=MOCK))
    for template in new["spec"]["predictors"][0]["componentSpecs"]:
        template.pop("metadata", None)
        template["spec"] = {"containers": template["spec"]["containers"], "terminationGracePeriodSeconds": 1}
    old = convert(new, "v1alpha1")
    pod = old["spec"]["predictors"][0]["componentSpec"]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["classifier-1", "classifier-2", "eg-router"]
    assert pod["spec"]["terminationGracePeriodSeconds"] == 1


def test_downgrade_refuses_templates_that_differ_and_says_where() -> None:
    new = _sdep(generate("mab", "mymab", image_a=MOCK, image_b=MOCK))
    with pytest.raises(ManifestError) as info:
        convert(new, "v1alpha1")
    assert info.value.path == "spec.predictors[0].componentSpecs[1].metadata"
    assert "cannot become v1alpha1's single componentSpec" in str(info.value)


def test_downgrade_refuses_hpa() -> None:
    new = _sdep(generate("serve-simple", "mymodel", image=MOCK))
    new["spec"]["predictors"][0]["componentSpecs"][0]["hpaSpec"] = {"minReplicas": 1, "maxReplicas": 3}
    with pytest.raises(ManifestError) as info:
        convert(new, "v1alpha1")
    assert info.value.path == "spec.predictors[0].componentSpecs[0].hpaSpec"
    assert "v1alpha1 has no hpaSpec" in str(info.value)


def test_v1alpha2_and_v1_differ_only_in_api_version() -> None:
    new = _sdep(generate("abtest", "myab", image_a=MOCK, image_b=MOCK))
    v1 = convert(new, "machinelearning.seldon.io/v1")
    assert v1 == {**new, "apiVersion": "machinelearning.seldon.io/v1"}
    assert convert(v1, "v1alpha2") == new


def test_list_documents_convert_only_their_seldon_items() -> None:
    doc = generate("serve-simple", "mymodel", image=MOCK, pvc_name="mypvc", api_version="v1alpha1")
    new = convert(doc, "v1alpha2")
    assert new["items"][0] == doc["items"][0]
    assert "componentSpecs" in new["items"][1]["spec"]["predictors"][0]
    assert convert(new, "v1alpha1") == doc


def test_errors_inside_a_list_say_which_item() -> None:
    doc = generate("mab", "mymab", image_a=MOCK, image_b=MOCK)
    with pytest.raises(ManifestError) as info:
        convert(doc, "v1alpha1")
    assert str(info.value).startswith("items[0]: spec.predictors[0].componentSpecs[1].metadata: ")


@pytest.mark.parametrize(
    ("doc", "to", "words"),
    [
        (
            {"apiVersion": "machinelearning.seldon.io/v1alpha2", "kind": "SeldonDeployment"},
            "v3",
            "choose one of",
        ),
        ({"apiVersion": "apps/v1", "kind": "Deployment"}, "v1alpha2", "is not a SeldonDeployment"),
        ({"apiVersion": "seldon/v9", "kind": "SeldonDeployment"}, "v1alpha2", "is not one of"),
    ],
)
def test_impossible_conversions_are_refused(doc: dict[str, Any], to: str, words: str) -> None:
    with pytest.raises(ManifestError, match=words):
        convert(copy.deepcopy(doc), to)
