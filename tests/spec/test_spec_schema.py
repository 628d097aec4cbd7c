"""The CRD schema comes from the same models that load manifests."""

from __future__ import annotations

import json

from seldon_serving.spec import crd_schema


def test_crd_schema_describes_predictors_and_graph() -> None:
    schema = crd_schema()
    assert isinstance(schema, dict)
    assert "$ref" not in json.dumps(schema) and "anyOf" not in json.dumps(schema)
    predictor = schema["properties"]["spec"]["properties"]["predictors"]["items"]
    assert set(predictor["required"]) == {"name", "graph"}
    graph = predictor["properties"]["graph"]
    assert "ROUTER" in graph["properties"]["type"]["enum"]
    assert graph["properties"]["parameters"]["items"]["properties"]["type"]["enum"] == [
        "INT",
        "FLOAT",
        "DOUBLE",
        "STRING",
        "BOOL",
    ]
    assert graph["properties"]["children"]["items"]["properties"]["name"] == {"type": "string"}
    # pod templates pass through untyped; unknown keys everywhere survive the API server's pruning
    opaque = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert predictor["properties"]["componentSpecs"]["items"] == opaque
    assert predictor["properties"]["componentSpec"]["x-kubernetes-preserve-unknown-fields"] is True
    assert predictor["x-kubernetes-preserve-unknown-fields"] is True
    assert schema["properties"]["metadata"] == {"type": "object"}


def _nodes(node: object) -> list[dict[str, object]]:
    if isinstance(node, dict):
        return [node, *(n for value in node.values() for n in _nodes(value))]
    if isinstance(node, list):
        return [n for item in node for n in _nodes(item)]
    return []


def test_optional_fields_are_not_nullable() -> None:
    # The API server drops a null of a field that is not nullable (so null means "not given",
    # as None does in the models), and no enum has to say whether null is one of its values.
    schema = crd_schema()
    assert not [n for n in _nodes(schema) if "nullable" in n]
    graph = schema["properties"]["spec"]["properties"]["predictors"]["items"]["properties"]["graph"]
    assert graph["properties"]["type"]["type"] == "string"
    assert None not in graph["properties"]["type"]["enum"]


def test_every_node_has_a_type_or_keeps_anything() -> None:
    for node in _nodes(crd_schema()):
        if "properties" in node or "items" in node or "enum" in node:
            assert "type" in node, node
    schema = crd_schema()
    assert schema["type"] == "object"
    assert next(iter(schema)) == "type"  # printed first, so the CRD reads top-down


def test_a_union_of_kinds_is_left_untyped() -> None:
    from seldon_serving.spec.schema import _Converter

    union = {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}
    assert _Converter({}).convert(union) == {"x-kubernetes-preserve-unknown-fields": True}
    objects = {"anyOf": [{"type": "object"}, {"type": "object", "properties": {"a": {"type": "string"}}}]}
    assert _Converter({}).convert(objects) == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    optional = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]}
    assert _Converter({}).convert(optional) == {"type": "integer", "minimum": 0}
