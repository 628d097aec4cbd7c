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
