"""Helpers for the tests that run `seldon serve`: manifests on disk (the gateway process
itself is `tests.helpers.gateway`, re-exported here)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import ROOT, Gateway, gateway

__all__ = ["EXAMPLES", "USER_MODELS", "Gateway", "deployment", "example_model", "gateway", "unit", "write"]

EXAMPLES = ROOT / "examples" / "manifests"
USER_MODELS = ROOT / "tests" / "compat" / "models"


def unit(
    name: str,
    type_: str | None = None,
    *,
    children: list[dict[str, Any]] | None = None,
    implementation: str | None = None,
    params: dict[str, Any] | None = None,
    endpoint: tuple[str, int] | None = None,
) -> dict[str, Any]:
    """A graph node; `endpoint=("REST"|"GRPC", port)` makes it a remote component on 127.0.0.1."""
    node: dict[str, Any] = {"name": name, "children": children or []}
    if type_:
        node["type"] = type_
    if implementation:
        node["implementation"] = implementation
    if params:
        kinds = {float: "FLOAT", int: "INT", str: "STRING", bool: "BOOL"}
        node["parameters"] = [{"name": k, "value": str(v), "type": kinds[type(v)]} for k, v in params.items()]
    if endpoint:
        node["endpoint"] = {"type": endpoint[0], "service_host": "127.0.0.1", "service_port": endpoint[1]}
    return node


def deployment(
    name: str, graph: dict[str, Any], classes: dict[str, str] | None = None, namespace: str | None = None
) -> dict[str, Any]:
    """A v1alpha2 SeldonDeployment; `classes` maps node -> MODEL_NAME (a class file beside the manifest)."""
    containers = [
        {"name": node, "image": f"example/{cls.lower()}:0.1", "env": [{"name": "MODEL_NAME", "value": cls}]}
        for node, cls in (classes or {}).items()
    ]
    predictor: dict[str, Any] = {"name": "main", "replicas": 1, "graph": graph}
    predictor["componentSpecs"] = [{"spec": {"containers": containers}}]
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "machinelearning.seldon.io/v1alpha2",
        "kind": "SeldonDeployment",
        "metadata": metadata,
        "spec": {"name": name, "predictors": [predictor]},
    }


def write(directory: Path, filename: str, doc: dict[str, Any], *models: str) -> Path:
    """Write a manifest (YAML, or JSON for *.json) and copy the user model files it needs beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    text = json.dumps(doc) if filename.endswith(".json") else yaml.safe_dump(doc, sort_keys=False)
    path.write_text(text)
    for model in models:
        shutil.copy(USER_MODELS / f"{model}.py", directory / f"{model}.py")
    return path


def example_model(name: str, **params: Any) -> dict[str, Any]:
    """The seed's serve-simple manifest for `name` with the mock classifier, and node parameters."""
    doc = yaml.safe_load((EXAMPLES / "mymodel.yaml").read_text())["items"][-1]
    doc["metadata"]["name"] = doc["spec"]["name"] = name
    predictor = doc["spec"]["predictors"][0]
    predictor["graph"]["name"] = predictor["componentSpecs"][0]["spec"]["containers"][0]["name"] = name
    predictor["name"] = name
    if params:
        predictor["graph"]["parameters"] = [
            {"name": k, "value": str(v), "type": "INT"} for k, v in params.items()
        ]
    return doc
