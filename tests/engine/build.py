"""Building deployments from compact graph descriptions for the engine tests."""

from __future__ import annotations

from typing import Any

from seldon_serving.engine.deployment import Deployment, build_deployment
from seldon_serving.spec import parse_deployment, validate
from tests.deploy.gateway import unit as node

__all__ = ["MODELS", "build", "manifest", "node", "predictor", "user_object"]

MODELS = "tests.engine.engine_models"


def manifest(
    name: str,
    graph: dict[str, Any] | None = None,
    classes: dict[str, str] | None = None,
    *,
    predictors: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A v1alpha2 SeldonDeployment; `classes` maps node name -> class in engine_models."""
    if predictors is None:
        predictors = [predictor("main", graph or {}, classes or {})]
    spec: dict[str, Any] = {"name": name, "predictors": predictors}
    if annotations:
        spec["annotations"] = annotations
    return {
        "apiVersion": "machinelearning.seldon.io/v1alpha2",
        "kind": "SeldonDeployment",
        "metadata": {"name": name},
        "spec": spec,
    }


def predictor(
    name: str, graph: dict[str, Any], classes: dict[str, str], version: str = "1.0", **extra: Any
) -> dict[str, Any]:
    containers = [
        {
            "name": node_name,
            "image": f"example/{cls.lower()}:{version}",
            "env": [{"name": "MODEL_NAME", "value": f"{MODELS}.{cls}"}],
        }
        for node_name, cls in classes.items()
    ]
    return {"name": name, "graph": graph, "componentSpecs": [{"spec": {"containers": containers}}], **extra}


def build(doc: dict[str, Any], namespace: str = "default") -> Deployment:
    sdep = parse_deployment(doc)
    validate(sdep)
    return build_deployment(sdep, namespace=namespace)


def user_object(deployment: Deployment, node_name: str, predictor: int = 0) -> Any:
    root = deployment.predictors[predictor].root
    found = next(n for n in root.walk() if n.name == node_name)
    return found.runner.user_object  # type: ignore[attr-defined]
