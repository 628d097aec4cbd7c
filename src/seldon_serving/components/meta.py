"""Checking user tags/metrics and building the `meta` of a component's answer.

Merge order follows Seldon v1: tags = request tags, then the class's `tags()`, then the
per-request (runtime) tags, later keys winning; metrics = request metrics followed by the
class's `metrics()` and the runtime ones; puid copied; requestPath = {unit: image} overlaid by
the incoming requestPath.  Keys whose value would be empty are left out, so answers stay
minimal and strictly inside the proto schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from numbers import Real
from typing import Any

from seldon_serving.protocol.errors import BadMetric, UserCodeError
from seldon_serving.protocol.message import Meta

__all__ = ["METRIC_TYPES", "build_meta", "merge_metas", "validate_metrics", "validate_tags"]

METRIC_TYPES = frozenset({"COUNTER", "GAUGE", "TIMER", "HISTOGRAM"})
_METRIC_KEYS = frozenset({"key", "type", "value", "tags", "bins"})


def _is_number(value: Any) -> bool:
    # numbers.Real covers int, float and numpy scalars; bool is excluded as a likely mistake.
    return isinstance(value, Real) and not isinstance(value, bool)


def _metric_problem(metric: Any) -> str | None:
    if not isinstance(metric, Mapping):
        return "a metric must be a dict"
    extra = set(metric) - _METRIC_KEYS
    if extra:
        return f"unknown field(s) {', '.join(sorted(map(str, extra)))}"
    key = metric.get("key")
    if not isinstance(key, str) or not key:
        return "'key' must be a non-empty string"
    if metric.get("type") not in METRIC_TYPES:
        return "'type' must be COUNTER, GAUGE, TIMER or HISTOGRAM"
    if not _is_number(metric.get("value")):
        return "'value' must be a number"
    tags = metric.get("tags")
    if tags is not None and not (
        isinstance(tags, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())
    ):
        return "'tags' must map strings to strings"
    bins = metric.get("bins")
    if bins is not None and not (isinstance(bins, list | tuple) and all(_is_number(b) for b in bins)):
        return "'bins' must be a list of numbers"
    return None


def validate_metrics(metrics: Any, source: str) -> list[dict[str, Any]]:
    """Clean copies of `metrics` (values as floats); BadMetric naming the first bad one.

    `source` says where they came from, e.g. "metrics()", for the error text.
    """
    if metrics is None:
        return []
    if not isinstance(metrics, list | tuple):
        raise BadMetric(f"Bad metric created during request: {source} must return a list, got {metrics!r}")
    clean: list[dict[str, Any]] = []
    for metric in metrics:
        problem = _metric_problem(metric)
        if problem is not None:
            raise BadMetric(f"Bad metric created during request: {metric!r} from {source}: {problem}")
        value = metric["value"]
        # Kept as the user wrote it (an int stays an int, as Seldon's wrapper echoes it); numpy
        # scalars become Python numbers.
        value = value if type(value) in (int, float) else float(value)
        item: dict[str, Any] = {"key": metric["key"], "type": metric["type"], "value": value}
        if metric.get("tags"):
            item["tags"] = dict(metric["tags"])
        if metric.get("bins"):
            item["bins"] = [float(b) for b in metric["bins"]]
        clean.append(item)
    return clean


def validate_tags(tags: Any, source: str) -> dict[str, Any]:
    """`tags` as a dict of string keys (values any JSON), or UserCodeError."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping) or not all(isinstance(k, str) for k in tags):
        raise UserCodeError(f"{source} must return a dict with string keys, got {tags!r}")
    return dict(tags)


def build_meta(
    base: Meta | None,
    *,
    puid: str | None,
    tags: Mapping[str, Any] | None = None,
    metrics: list[dict[str, Any]] | None = None,
    own_path: Mapping[str, str] | None = None,
) -> Meta:
    """The meta of an answer: `base` (the request's meta, or None) with this component's additions."""
    base = base or {}
    meta: Meta = {}
    if puid:
        meta["puid"] = puid
    merged_tags = {**(base.get("tags") or {}), **(tags or {})}
    if merged_tags:
        meta["tags"] = merged_tags
    routing = base.get("routing")
    if routing:
        meta["routing"] = dict(routing)
    path = {**(own_path or {}), **(base.get("requestPath") or {})}
    if path:
        meta["requestPath"] = path
    all_metrics = [*(base.get("metrics") or ()), *(metrics or ())]
    if all_metrics:
        meta["metrics"] = all_metrics
    return meta


def merge_metas(metas: Iterable[Meta]) -> Meta:
    """One meta for an aggregate: tags, routing and requestPath merged, metrics concatenated."""
    tags: dict[str, Any] = {}
    routing: dict[str, int] = {}
    path: dict[str, str] = {}
    metrics: list[dict[str, Any]] = []
    for meta in metas:
        tags.update(meta.get("tags") or {})
        routing.update(meta.get("routing") or {})
        path.update(meta.get("requestPath") or {})
        metrics.extend(meta.get("metrics") or ())
    return {"tags": tags, "routing": routing, "requestPath": path, "metrics": metrics}
