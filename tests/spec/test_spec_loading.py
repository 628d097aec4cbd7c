"""Reading manifests the ways users have them: YAML, JSON, several documents, `kind: List`."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml

from seldon_serving.spec import (
    EndpointType,
    ManifestError,
    UnitType,
    load_documents,
    parse_deployment,
    validate,
)

SIMPLE = """\
apiVersion: machinelearning.seldon.io/v1alpha2
kind: SeldonDeployment
metadata:
  name: mymodel
  creationTimestamp: 2019-01-01T00:00:00Z
  resourceVersion: "42"
spec:
  name: mymodel
  predictors:
  - name: main
    replicas: 2
    componentSpecs:
    - spec:
        containers:
        - name: classifier
          image: seldonio/mock_classifier:1.0
          resources: {requests: {cpu: 100m}}
    graph:
      name: classifier
      type: MODEL
      endpoint: {type: GRPC}
      parameters:
      - {name: intValue, value: 7, type: INT}
      children: []
    x-team: fraud
"""


def test_single_yaml_document_gives_typed_fields() -> None:
    result = load_documents(SIMPLE, filename="simple.yaml")
    assert result.skipped == []
    (sdep,) = result.deployments
    graph = sdep.spec.predictors[0].graph
    assert (graph.type, graph.endpoint and graph.endpoint.type) == (UnitType.MODEL, EndpointType.GRPC)
    assert sdep.spec.predictors[0].replicas == 2
    # a YAML number is accepted and kept as the string the schema requires
    assert graph.parameters[0].value == "7"


def test_written_back_manifest_keeps_unknown_fields_and_timestamps_as_text() -> None:
    (sdep,) = load_documents(SIMPLE).deployments
    out = sdep.to_dict()
    assert out["metadata"]["creationTimestamp"] == "2019-01-01T00:00:00Z"
    assert out["metadata"]["resourceVersion"] == "42"
    assert out["spec"]["predictors"][0]["x-team"] == "fraud"
    assert out["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "100m"}
    }
    expected = yaml.safe_load(SIMPLE.replace("value: 7", "value: '7'"))
    expected["metadata"]["creationTimestamp"] = "2019-01-01T00:00:00Z"
    assert out == expected


def test_json_text_and_bytes_load_the_same() -> None:
    doc = yaml.safe_load(SIMPLE.replace("2019-01-01T00:00:00Z", "'x'"))
    from_text = load_documents(orjson.dumps(doc).decode()).deployments[0].to_dict()
    from_bytes = load_documents(orjson.dumps(doc), filename="m.json").deployments[0].to_dict()
    assert from_text == from_bytes
    assert from_text["spec"]["name"] == "mymodel"


def test_multi_document_yaml_with_other_kinds() -> None:
    text = (
        SIMPLE
        + "---\napiVersion: v1\nkind: Service\nmetadata: {name: front}\n---\n"
        + SIMPLE.replace("mymodel", "other")
    )
    result = load_documents(text)
    assert [s.metadata.name for s in result.deployments] == ["mymodel", "other"]
    assert result.skipped == ["Service front: not a SeldonDeployment, skipped"]


def test_kind_list_as_the_prototypes_emit_it() -> None:
    items = [
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "mypvc"}},
        yaml.safe_load(SIMPLE.replace("2019-01-01T00:00:00Z", "'t'")),
    ]
    result = load_documents(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    assert result.skipped == ["PersistentVolumeClaim mypvc: not a SeldonDeployment, skipped"]
    assert [s.metadata.name for s in result.deployments] == ["mymodel"]


def test_reads_a_file_path(tmp_path: Path) -> None:
    path = tmp_path / "mymodel.yaml"
    path.write_text(SIMPLE)
    assert load_documents(path).deployments[0].metadata.name == "mymodel"
    assert load_documents(str(path)).deployments[0].metadata.name == "mymodel"


def test_missing_file_names_the_file() -> None:
    with pytest.raises(ManifestError, match=r"^nowhere\.yaml: no such file$"):
        load_documents("nowhere.yaml")


def test_unknown_type_is_one_sentence_naming_file_and_path() -> None:
    with pytest.raises(ManifestError) as info:
        load_documents(SIMPLE.replace("type: MODEL", "type: ROUTERX"), filename="mab.yaml")
    err = info.value
    assert err.path == "spec.predictors[0].graph.type"
    assert err.source == "mab.yaml"
    assert str(err) == (
        "mab.yaml: spec.predictors[0].graph.type: 'ROUTERX' is not one of "
        "UNKNOWN_TYPE, ROUTER, COMBINER, MODEL, TRANSFORMER, OUTPUT_TRANSFORMER"
    )
    assert "\n" not in str(err) and "pydantic" not in str(err)
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(
    ("old", "new", "path", "words"),
    [
        ("type: GRPC", "type: SOAP", "spec.predictors[0].graph.endpoint.type", "is not one of REST, GRPC"),
        ("type: INT", "type: LONG", "spec.predictors[0].graph.parameters[0].type", "'LONG' is not one of"),
        ("replicas: 2", "replicas: -1", "spec.predictors[0].replicas", "must be >= 0"),
        ("replicas: 2", "replicas: many", "spec.predictors[0].replicas", "expected an integer"),
        ("  - name: main\n", "  - nom: main\n", "spec.predictors[0].name", "required field is missing"),
        ("      name: classifier\n      type", "      type", "spec.predictors[0].graph.name", "required"),
        (
            "      children: []",
            "      children: {a: 1}",
            "spec.predictors[0].graph.children",
            "expected a list",
        ),
    ],
)
def test_model_errors_name_the_field(old: str, new: str, path: str, words: str) -> None:
    assert old in SIMPLE
    with pytest.raises(ManifestError) as info:
        load_documents(SIMPLE.replace(old, new), filename="m.yaml")
    assert info.value.path == path
    assert str(info.value).startswith(f"m.yaml: {path}: ")
    assert words in str(info.value)


def test_yaml_syntax_error_names_line_and_column() -> None:
    with pytest.raises(ManifestError) as info:
        load_documents("apiVersion: v1\nkind: [List\nitems: 1\n", filename="broken.yaml")
    assert str(info.value).startswith("broken.yaml: not valid YAML or JSON at line ")
    assert info.value.path == ""


def test_a_scalar_document_is_refused() -> None:
    with pytest.raises(ManifestError, match="expected a mapping"):
        load_documents("just text\nmore text\n")


def test_errors_in_a_file_with_several_deployments_say_which_one() -> None:
    text = SIMPLE + "---\n" + SIMPLE.replace("mymodel", "other").replace("type: MODEL", "type: X")
    with pytest.raises(ManifestError) as info:
        load_documents(text, filename="two.yaml")
    assert str(info.value).startswith("two.yaml (SeldonDeployment other): spec.predictors[0].graph.type: ")


def test_validation_errors_carry_the_file_name_too() -> None:
    (sdep,) = load_documents(
        SIMPLE.replace("name: classifier\n      type", "name: nobody\n      type"), filename="m.yaml"
    ).deployments
    with pytest.raises(ManifestError) as info:
        validate(sdep)
    assert str(info.value).startswith("m.yaml: spec.predictors[0].graph: node 'nobody' has no container")


def test_parse_deployment_from_a_dict() -> None:
    sdep = parse_deployment(yaml.safe_load(SIMPLE.replace("2019-01-01T00:00:00Z", "'t'")))
    assert sdep.version == "v1alpha2"
    validate(sdep)
