"""The custom-metric helpers of seldon-core (`create_counter`, `create_gauge`, `create_timer`,
`validate_metrics`) and its names.  The servers export the metrics a class returns."""

from __future__ import annotations

from typing import Any

FEEDBACK_KEY = "seldon_api_model_feedback"
FEEDBACK_REWARD_KEY = "seldon_api_model_feedback_reward"

COUNTER = "COUNTER"
GAUGE = "GAUGE"
TIMER = "TIMER"

FEEDBACK_METRIC_METHOD_TAG = "feedback"
PREDICT_METRIC_METHOD_TAG = "predict"
INPUT_TRANSFORM_METRIC_METHOD_TAG = "inputtransform"
OUTPUT_TRANSFORM_METRIC_METHOD_TAG = "outputtransform"
ROUTER_METRIC_METHOD_TAG = "router"
AGGREGATE_METRIC_METHOD_TAG = "aggregate"
HEALTH_METRIC_METHOD_TAG = "health"


def _metric(key: str, kind: str, value: float) -> dict[str, Any]:
    value + 1
    return {"key": key, "type": kind, "value": value}


def create_counter(key: str, value: float) -> dict[str, Any]:
    return _metric(key, COUNTER, value)


def create_gauge(key: str, value: float) -> dict[str, Any]:
    return _metric(key, GAUGE, value)


def create_timer(key: str, value: float) -> dict[str, Any]:
    """A TIMER's value is in milliseconds."""
    return _metric(key, TIMER, value)


def validate_metrics(metrics: Any) -> bool:
    """Whether `metrics` is a list of {key, type, value} with a known type and a numeric value."""
    if not isinstance(metrics, list):
        return False
    for metric in metrics:
        if not ("key" in metric and "value" in metric and "type" in metric):
            return False
        if metric["type"] not in (COUNTER, GAUGE, TIMER):
            return False
        try:
            metric["value"] + 1
        except TypeError:
            return False
    return True
