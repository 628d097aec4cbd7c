"""Custom metrics are exported as Seldon's wrapper exports them (names, buckets, labels), and
exporting never fails the request that carried the numbers (found by fuzzing: a negative
reward answered 500, and so did one metric key sent with two types)."""

from __future__ import annotations

import logging
import math
import os

import pytest
from prometheus_client.utils import floatToGoString

from seldon_serving.servers.metrics import SELDON_BUCKETS, Metrics, seldon_labels

LABELS = {**seldon_labels("d", "p", "m", "img:1.2", "v1"), "method": "x"}


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, {**LABELS, "worker_id": str(os.getpid()), **labels})


def test_seldons_default_labels() -> None:
    assert seldon_labels("d", "p", "m", "repo/img:1.2", "v1") == {
        "deployment_name": "d",
        "model_name": "m",
        "model_image": "repo/img",
        "model_version": "1.2",
        "predictor_name": "p",
        "predictor_version": "v1",
        "seldon_deployment_name": "d",
        "image_name": "repo/img",
        "image_version": "1.2",
    }
    assert set(seldon_labels().values()) == {"NOT_IMPLEMENTED"}


def test_a_timer_is_the_histogram_named_by_its_key_over_seldons_buckets() -> None:
    metrics = Metrics()
    metrics.record_custom([{"key": "latency", "type": "TIMER", "value": 20.0, "tags": {"t": "a"}}], LABELS)
    assert value(metrics, "latency_count", t="a") == 1 and value(metrics, "latency_sum", t="a") == 0.02
    assert value(metrics, "latency_seconds_count", t="a") is None
    # numpy's logspace, as Seldon computes it (the last one is 29.999999999999996)
    assert len(SELDON_BUCKETS) == 50 and SELDON_BUCKETS[0] == 0.001
    assert SELDON_BUCKETS[-1] == pytest.approx(30.0)
    below = [b for b in SELDON_BUCKETS if b < 0.02]
    assert value(metrics, "latency_bucket", t="a", le=floatToGoString(below[-1])) == 0.0
    assert value(metrics, "latency_bucket", t="a", le=floatToGoString(below[-1] * 1.3)) is None


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


def test_a_tag_named_like_one_of_seldons_labels_gives_way_to_it() -> None:
    # As Seldon's wrapper: the method and the default labels are laid over the tags.
    metrics = Metrics()
    metrics.record_custom([{"key": "clash", "type": "GAUGE", "value": 1.0, "tags": {"method": "y"}}], LABELS)
    assert value(metrics, "clash") == 1.0


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
