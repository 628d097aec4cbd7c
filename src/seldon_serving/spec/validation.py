"""Cross-field rules a SeldonDeployment must meet before anything starts: the manifest's
own rules, which need no knowledge of what runs a node (`engine.plan` resolves each node
and checks what that choice needs, e.g. a built-in's parameters).

Each check yields ManifestErrors with the field path; `validate` raises the first,
`find_problems` lists them all (for a CLI that wants to show everything at once).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from seldon_serving.spec.enums import API_VERSIONS, KIND, UnitType
from seldon_serving.spec.errors import ManifestError, join_path
from seldon_serving.spec.graph import (
    find_container,
    has_implementation,
    iter_containers,
    iter_units,
    serves_model,
    unit_type,
)
from seldon_serving.spec.models import PredictiveUnit, PredictorSpec, SeldonDeployment
from seldon_serving.spec.names import dns_name_problem
from seldon_serving.spec.params import parse_value


def deployment_name(sdep: SeldonDeployment) -> str:
    """The name clients use (/seldon/<name>/, gRPC header `seldon: <name>`): metadata.name or spec.name."""
    return sdep.metadata.name or sdep.spec.name or ""


def _check_header(sdep: SeldonDeployment) -> Iterator[ManifestError]:
    if sdep.api_version not in API_VERSIONS.values():
        known = ", ".join(API_VERSIONS.values())
        yield ManifestError("apiVersion", f"{sdep.api_version!r} is not one of {known}")
    if sdep.kind != KIND:
        yield ManifestError("kind", f"{sdep.kind!r} is not {KIND}")
    if not sdep.metadata.name and not sdep.spec.name:
        yield ManifestError("metadata.name", "the deployment needs a name (metadata.name or spec.name)")
    for path, name in (("metadata.name", sdep.metadata.name), ("spec.name", sdep.spec.name)):
        problem = dns_name_problem(name) if name else None
        if problem:
            yield ManifestError(path, problem)


def _check_pods(sdep: SeldonDeployment, i: int, predictor: PredictorSpec) -> Iterator[ManifestError]:
    base = join_path("spec", "predictors", i)
    if sdep.version == "v1alpha1" and "component_specs" in predictor.model_fields_set:
        yield ManifestError(
            join_path(base, "componentSpecs"),
            "v1alpha1 has a single componentSpec; use componentSpec or apiVersion "
            f"{API_VERSIONS['v1alpha2']}",
        )
    if sdep.version != "v1alpha1" and predictor.component_spec is not None:
        yield ManifestError(
            join_path(base, "componentSpec"),
            f"{sdep.version} takes a list componentSpecs; write componentSpecs: [<this template>] "
            f"or use apiVersion {API_VERSIONS['v1alpha1']}",
        )
    seen: dict[str, str] = {}
    # A container named like a model server's node may leave out the image: Seldon's operator
    # fills in the server's, and the container only sets its resources or env.
    servers = {unit.name for _, unit in iter_units(predictor.graph) if serves_model(unit)}
    for path, container in iter_containers(predictor):
        full = join_path(base, path)
        if container.name in seen:
            yield ManifestError(
                join_path(full, "name"),
                f"duplicate container name {container.name!r} (also at {seen[container.name]})",
            )
        seen.setdefault(container.name, full)
        if not container.image and not container.env_value("MODEL_NAME") and container.name not in servers:
            yield ManifestError(
                join_path(full, "image"),
                f"container {container.name!r} has no image; give an image or an env MODEL_NAME "
                "(only a container named like a model server's node, such as one with "
                "implementation SKLEARN_SERVER, may leave it out)",
            )


def _check_parameters(path: str, unit: PredictiveUnit) -> Iterator[ManifestError]:
    for j, param in enumerate(unit.parameters):
        try:
            parse_value(param.type, param.value)
        except ValueError as exc:
            yield ManifestError(join_path(path, "parameters", j, "value"), f"parameter {param.name}: {exc}")


def logger_url_problem(url: str) -> str | None:
    """Why `url` cannot receive request logs (an http(s) or file URL), or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError as exc:
        return f"it is not a URL ({exc})"
    if parts.scheme in ("http", "https"):
        return None if parts.hostname else "it names no host"
    if parts.scheme == "file":
        return None if parts.path else "it names no file"
    return f"its scheme {parts.scheme or '(none)'!r} is none of http, https, file"


def _check_unit(path: str, unit: PredictiveUnit, predictor: PredictorSpec) -> Iterator[ManifestError]:
    # A node with no type at all is a MODEL (Seldon's defaults); UNKNOWN_TYPE written out, with
    # nothing else to go by, is refused as Seldon's webhook refuses it.
    if not has_implementation(unit) and unit.type == UnitType.UNKNOWN_TYPE and not unit.methods:
        yield ManifestError(
            join_path(path, "type"),
            f"node {unit.name!r} is of type UNKNOWN_TYPE with no implementation or methods; set a type "
            "(MODEL, ROUTER, COMBINER, TRANSFORMER, OUTPUT_TRANSFORMER), an implementation or methods",
        )
    endpoint = unit.endpoint
    remote = endpoint is not None and endpoint.service_host and endpoint.service_port
    # A node that names an implementation is resolved (and checked) when the graph is planned.
    if not has_implementation(unit) and not remote and find_container(predictor, unit.name) is None:
        yield ManifestError(
            path,
            f"node {unit.name!r} has no container or implementation: add a container named "
            f"{unit.name!r} to the predictor's pod templates, set a built-in implementation "
            "(such as SIMPLE_MODEL or RANDOM_ABTEST), or give endpoint.service_host and "
            "endpoint.service_port of a running component",
        )
    kind = unit_type(unit)
    if not unit.children and kind in (UnitType.ROUTER, UnitType.COMBINER):
        what = "router" if kind == UnitType.ROUTER else "combiner"
        yield ManifestError(
            join_path(path, "children"), f"{what} {unit.name!r} has no children to send requests to"
        )
    if unit.logger is not None:
        # Seldon's webhook refuses a logger without a mode; a bad url would only be found when
        # the first event is sent.
        if unit.logger.mode is None:
            yield ManifestError(
                join_path(path, "logger", "mode"),
                f"node {unit.name!r} has a logger without a mode: set all, request or response",
            )
        problem = logger_url_problem(unit.logger.url) if unit.logger.url else None
        if problem:
            yield ManifestError(
                join_path(path, "logger", "url"),
                f"{unit.logger.url!r} cannot receive request logs: {problem}",
            )
    yield from _check_parameters(path, unit)


def _check_graph(i: int, predictor: PredictorSpec) -> Iterator[ManifestError]:
    base = join_path("spec", "predictors", i, "graph")
    seen: dict[str, str] = {}
    for path, unit in iter_units(predictor.graph, base):
        if unit.name in seen:
            yield ManifestError(
                join_path(path, "name"),
                f"duplicate node name {unit.name!r} in the graph (also at {seen[unit.name]})",
            )
        seen.setdefault(unit.name, path)
        if not unit.name:
            yield ManifestError(join_path(path, "name"), "a graph node needs a name")
        yield from _check_unit(path, unit, predictor)


def _check_traffic(sdep: SeldonDeployment) -> Iterator[ManifestError]:
    predictors = sdep.spec.predictors
    for i, p in enumerate(predictors):
        if p.traffic is not None and not 0 <= p.traffic <= 100:
            yield ManifestError(
                join_path("spec", "predictors", i, "traffic"), f"must be between 0 and 100, got {p.traffic}"
            )
    served = [p for p in predictors if not p.shadow]
    if not served:
        yield ManifestError("spec.predictors", "every predictor is a shadow; at least one must serve answers")
        return
    if len(served) == 1 and served[0].traffic is None:
        return  # one predictor, no traffic written: it takes everything
    total = sum(p.traffic or 0 for p in served)
    if total != 100:
        shares = ", ".join(f"{p.name} {p.traffic or 0}" for p in served)
        yield ManifestError(
            "spec.predictors",
            f"traffic of the non-shadow predictors sums to {total} ({shares}); it must sum to 100",
        )


def _problems(sdep: SeldonDeployment) -> Iterator[ManifestError]:
    yield from _check_header(sdep)
    names: dict[str, int] = {}
    for i, predictor in enumerate(sdep.spec.predictors):
        if predictor.name in names:
            yield ManifestError(
                join_path("spec", "predictors", i, "name"),
                f"duplicate predictor name {predictor.name!r} "
                f"(also spec.predictors[{names[predictor.name]}])",
            )
        names.setdefault(predictor.name, i)
        yield from _check_pods(sdep, i, predictor)
        yield from _check_graph(i, predictor)
    yield from _check_traffic(sdep)


def find_problems(sdep: SeldonDeployment) -> list[ManifestError]:
    """Every rule the deployment breaks, each naming its file (when known) and field path."""
    return [e.located(source=sdep.source, context=sdep.context) for e in _problems(sdep)]


def validate(sdep: SeldonDeployment) -> None:
    """Raise ManifestError for the first rule the deployment breaks (see module doc)."""
    for problem in _problems(sdep):
        raise problem.located(source=sdep.source, context=sdep.context)
