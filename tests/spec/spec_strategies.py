"""Hypothesis strategies for SeldonDeployment manifests (plain dicts, as users write them)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

API_VERSIONS = [
    "machinelearning.seldon.io/v1alpha1",
    "machinelearning.seldon.io/v1alpha2",
    "machinelearning.seldon.io/v1",
]

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_ALNUM = _LOWER + "0123456789"
# DNS-1123 labels: a letter, then letters/digits/'-', ending with a letter or digit
dns_names = st.tuples(
    st.sampled_from(_LOWER), st.text(_ALNUM + "-", max_size=6), st.text(_ALNUM, min_size=1, max_size=1)
).map(lambda t: "".join(t))
images = st.tuples(st.text(_LOWER, min_size=1, max_size=6), st.integers(0, 9)).map(
    lambda t: f"seldonio/{t[0]}:1.{t[1]}"
)

# What a node is decides which fields and how many children it gets.
LEAF_KINDS = ["model", "simple_model", "remote", "methods"]
INNER_KINDS = ["transformer", "output_transformer", "router", "abtest", "combiner", "simple_router"]
NEEDS_CONTAINER = {"model", "methods", "transformer", "output_transformer", "router"}


@st.composite
def shapes(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    """A graph skeleton: kinds and children, names assigned later."""
    kind = draw(st.sampled_from(LEAF_KINDS if depth >= 2 else LEAF_KINDS + INNER_KINDS))
    if kind == "abtest":
        n = 2
    elif kind in ("router", "combiner", "simple_router"):
        n = draw(st.integers(1, 2))
    elif kind in ("transformer", "output_transformer"):
        n = draw(st.integers(0, 1))
    else:
        n = 0
    return {"kind": kind, "children": [draw(shapes(depth + 1)) for _ in range(n)]}


def _count(shape: dict[str, Any]) -> int:
    return 1 + sum(_count(c) for c in shape["children"])


@st.composite
def parameters(draw: st.DrawFn) -> list[dict[str, str]]:
    out = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["INT", "FLOAT", "DOUBLE", "STRING", "BOOL"]))
        if kind == "INT":
            value = str(draw(st.integers(-(10**6), 10**6)))
        elif kind in ("FLOAT", "DOUBLE"):
            value = repr(draw(st.floats(allow_nan=False, allow_infinity=False, width=32)))
        elif kind == "BOOL":
            value = draw(st.sampled_from(["true", "False", "1", "0", "yes", "off"]))
        else:
            value = draw(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=8))
        out.append({"name": draw(dns_names), "type": kind, "value": value})
    return out


@st.composite
def graphs(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    """(graph, names of the nodes that need a container)."""
    shape = draw(shapes())
    names = iter(draw(st.lists(dns_names, min_size=_count(shape), max_size=_count(shape), unique=True)))
    containers: list[str] = []

    def build(node: dict[str, Any]) -> dict[str, Any]:
        kind = node["kind"]
        unit: dict[str, Any] = {"name": next(names)}
        if kind in NEEDS_CONTAINER:
            containers.append(unit["name"])
        if kind in ("model", "remote"):
            unit["type"] = "MODEL"
        elif kind in ("transformer", "output_transformer", "router"):
            unit["type"] = kind.upper()
        elif kind == "methods":
            unit["type"] = "UNKNOWN_TYPE"
            methods = st.sampled_from(["TRANSFORM_INPUT", "SEND_FEEDBACK"])
            unit["methods"] = draw(st.lists(methods, min_size=1))
        else:
            unit["implementation"] = {
                "simple_model": "SIMPLE_MODEL",
                "abtest": "RANDOM_ABTEST",
                "combiner": "AVERAGE_COMBINER",
                "simple_router": "SIMPLE_ROUTER",
            }[kind]
        if kind == "remote":
            unit["endpoint"] = {"service_host": "localhost", "service_port": draw(st.integers(1, 65535))}
        elif draw(st.booleans()):
            unit["endpoint"] = {"type": draw(st.sampled_from(["REST", "GRPC"]))}
        params = draw(parameters())
        if kind == "abtest":
            ratio = {"name": "ratioA", "type": "FLOAT", "value": str(draw(st.floats(0, 1)))}
            params.insert(draw(st.integers(0, len(params))), ratio)
        if params:
            unit["parameters"] = params
        if node["children"] or draw(st.booleans()):
            unit["children"] = [build(c) for c in node["children"]]
        return unit

    return build(shape), containers


extras = st.dictionaries(
    st.sampled_from(["x-note", "resources", "ports", "customField"]),
    st.one_of(
        st.integers(-(2**31), 2**31),
        st.text(max_size=5),
        st.just({"limits": {"cpu": "1"}}),
        st.just([1, "a"]),
    ),
    max_size=2,
)


@st.composite
def pod_templates(draw: st.DrawFn, names: list[str], v1alpha1: bool) -> list[dict[str, Any]]:
    """The containers for `names` (plus maybe a sidecar), spread over pod templates."""
    taken = set(names)
    sidecars = [n for n in draw(st.lists(dns_names, max_size=1)) if n not in taken]
    all_names = names + sidecars
    containers = []
    for name in all_names:
        container: dict[str, Any] = {"name": name, "image": draw(images)}
        container.update(draw(extras))
        if draw(st.booleans()):
            container["env"] = [{"name": "PREDICTIVE_UNIT_LOG_LEVEL", "value": "INFO"}]
        containers.append(container)
    if not containers:
        return []
    groups = 1 if v1alpha1 else draw(st.integers(1, len(containers)))
    buckets: list[list[dict[str, Any]]] = [[] for _ in range(groups)]
    for i, container in enumerate(containers):
        buckets[i % groups if i < groups else draw(st.integers(0, groups - 1))].append(container)
    templates = []
    for bucket in buckets:
        spec: dict[str, Any] = {"containers": bucket}
        if draw(st.booleans()):
            spec["terminationGracePeriodSeconds"] = 1
        template: dict[str, Any] = {"spec": spec}
        if draw(st.booleans()):
            template["metadata"] = {"labels": {"version": draw(st.sampled_from(["v1", "v2"]))}}
        templates.append(template)
    return templates


@st.composite
def traffic_split(draw: st.DrawFn, n: int) -> list[int] | None:
    if n == 1 and draw(st.booleans()):
        return None
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=n - 1, max_size=n - 1)))
    bounds = [0, *cuts, 100]
    return [bounds[i + 1] - bounds[i] for i in range(n)]


@st.composite
def deployments(draw: st.DrawFn, api_version: str | None = None) -> dict[str, Any]:
    """A valid SeldonDeployment manifest."""
    version = api_version or draw(st.sampled_from(API_VERSIONS))
    v1alpha1 = version.endswith("v1alpha1")
    n_served = draw(st.integers(1, 2))
    n_shadow = draw(st.integers(0, 1))
    names = draw(st.lists(dns_names, min_size=n_served + n_shadow, max_size=n_served + n_shadow, unique=True))
    traffic = draw(traffic_split(n_served))
    predictors = []
    for i, pname in enumerate(names):
        graph, needing = draw(graphs())
        predictor: dict[str, Any] = {"name": pname, "graph": graph}
        templates = draw(pod_templates(needing, v1alpha1))
        if templates:
            if v1alpha1:
                predictor["componentSpec"] = templates[0]
            else:
                predictor["componentSpecs"] = templates
        if draw(st.booleans()):
            predictor["replicas"] = draw(st.integers(0, 5))
        if i < n_served:
            if traffic is not None:
                predictor["traffic"] = traffic[i]
        else:
            predictor["shadow"] = True
        if draw(st.booleans()):
            predictor["labels"] = {"version": "v1"}
        predictor.update(draw(st.dictionaries(st.sampled_from(["svcOrchSpec", "explainer"]), st.just({}))))
        predictors.append(predictor)
    name = draw(dns_names)
    metadata: dict[str, Any] = {"name": name}
    if draw(st.booleans()):
        metadata["namespace"] = "default"
    if draw(st.booleans()):
        metadata["labels"] = {"app": "seldon"}
    if draw(st.booleans()):
        metadata["creationTimestamp"] = "2019-01-01T00:00:00Z"
    spec: dict[str, Any] = {"name": name, "predictors": predictors}
    if draw(st.booleans()):
        spec.update({"oauth_key": "", "oauth_secret": "", "annotations": {"project_name": name}})
    return {"apiVersion": version, "kind": "SeldonDeployment", "metadata": metadata, "spec": spec}
