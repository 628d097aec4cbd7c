"""Prometheus export never fails the request that carried the numbers (found by fuzzing:
a negative reward answered 500, and so did one metric key sent with two types)."""

from __future__ import annotations

import logging
import math

import pytest

from seldon_serving.servers.metrics import Metrics

LABELS = {"deployment_name": "d", "predictor_name": "p", "model_name": "m", "model_image": "i", "method": "x"}


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, {**LABELS, **labels})


@pytest.mark.parametrize("reward", [-1.0, -2.2e-308, math.nan, math.inf, -math.inf])
def test_rewards_a_counter_cannot_add_are_counted_but_not_summed(reward: float) -> None:
    metrics = Metrics()
    metrics.record_feedback(0.5, LABELS)
    metrics.record_feedback(reward, LABELS)
    assert value(metrics, "seldon_api_model_feedback_total") == 2
    assert value(metrics, "seldon_api_model_feedback_reward_total") == 0.5


def test_one_key_with_two_types_keeps_the_first_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    with caplog.at_level(logging.WARNING, "seldon_serving.metrics"):
        for _ in range(3):
            metrics.record_custom(
                [{"key": "x", "type": "COUNTER", "value": 1.0}, {"key": "x", "type": "GAUGE", "value": 5.0}],
                LABELS,
            )
    assert value(metrics, "x_total") == 3
    assert len([r for r in caplog.records if "'x' (GAUGE) is not exported" in r.message]) == 1


def test_keys_and_tags_become_valid_prometheus_names() -> None:
    metrics = Metrics()
    metrics.record_custom(
        [
            {"key": "my-metric.v2", "type": "GAUGE", "value": 2.0},
            {"key": "9 lives é", "type": "GAUGE", "value": 3.0, "tags": {"the tag": "a"}},
        ],
        LABELS,
    )
    assert value(metrics, "my_metric_v2") == 2.0
    assert value(metrics, "m_9_lives__", the_tag="a") == 3.0


def test_a_tag_named_like_our_labels_is_skipped_not_raised() -> None:
    metrics = Metrics()
    metrics.record_custom([{"key": "clash", "type": "GAUGE", "value": 1.0, "tags": {"method": "y"}}], LABELS)
    assert value(metrics, "clash") is None


def test_counters_and_histograms_skip_values_that_would_spoil_them() -> None:
    metrics = Metrics()
    records = [
        {"key": "c", "type": "COUNTER", "value": 2.0},
        {"key": "c", "type": "COUNTER", "value": math.inf},
        {"key": "c", "type": "COUNTER", "value": -1.0},
        {"key": "h", "type": "HISTOGRAM", "value": math.nan},
        {"key": "h", "type": "HISTOGRAM", "value": 0.5},
        {"key": "g", "type": "GAUGE", "value": math.nan},
    ]
    metrics.record_custom(records, LABELS)
    assert value(metrics, "c_total") == 2.0
    assert value(metrics, "h_sum") == 0.5 and value(metrics, "h_count") == 1
    assert math.isnan(value(metrics, "g") or 0.0)
