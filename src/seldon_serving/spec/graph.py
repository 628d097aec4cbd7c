"""Walking a predictor's graph and finding the container behind each node."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from seldon_serving.spec.enums import Implementation, UnitType, is_model_server
from seldon_serving.spec.errors import join_path
from seldon_serving.spec.models import Container, PredictiveUnit, PredictorSpec


def iter_units(graph: PredictiveUnit, path: str = "graph") -> Iterator[tuple[str, PredictiveUnit]]:
    """Every node, depth first (parent before children, children in order), with its field path."""
    yield path, graph
    for i, child in enumerate(graph.children):
        yield from iter_units(child, join_path(path, "children", i))


def iter_containers(predictor: PredictorSpec) -> Iterator[tuple[str, Container]]:
    """Every container of every pod template, with its path relative to the predictor."""
    if predictor.component_spec is not None:
        for i, container in enumerate(predictor.component_spec.containers):
            yield join_path("componentSpec", "spec", "containers", i), container
    for j, template in enumerate(predictor.component_specs):
        for i, container in enumerate(template.containers):
            yield join_path("componentSpecs", j, "spec", "containers", i), container


def find_container(predictor: PredictorSpec, unit_name: str) -> Container | None:
    """The container named like the node (Seldon's rule: node name == container name)."""
    return next((c for _, c in iter_containers(predictor) if c.name == unit_name), None)


def container_for(predictor: PredictorSpec, unit_name: str) -> dict[str, Any] | None:
    """The node's container as a manifest dict (name, image, env, ports... as written), or None."""
    container = find_container(predictor, unit_name)
    return container.to_dict() if container is not None else None


def unit_image(predictor: PredictorSpec, unit: PredictiveUnit) -> str:
    """The image serving the node: its container's image, "" for implementations and image-less nodes."""
    if has_implementation(unit):
        return ""
    container = find_container(predictor, unit.name)
    return (container.image or "") if container is not None else ""


def has_implementation(unit: PredictiveUnit) -> bool:
    """Whether the node names an implementation (a built-in or a model server) to run it."""
    return unit.implementation not in (None, Implementation.UNKNOWN_IMPLEMENTATION)


def serves_model(unit: PredictiveUnit) -> bool:
    """Whether a model server (SKLEARN_SERVER, a registered one...) runs the node."""
    return has_implementation(unit) and is_model_server(unit.implementation)


def unit_type(unit: PredictiveUnit) -> UnitType | None:
    """The node's type with Seldon's defaults (its operator's `addDefaultsToGraph`): a node with
    no type, implementation or methods is a MODEL, and so is a model server's node, whatever
    type it names; otherwise the type as written (None: its methods or implementation decide)."""
    if serves_model(unit):
        return UnitType.MODEL
    if unit.type is None and not unit.methods and not has_implementation(unit):
        return UnitType.MODEL
    return unit.type
