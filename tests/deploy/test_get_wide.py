"""`seldon get -o wide` shows what stateful nodes learnt (routers' branches, detectors' observations)."""

from __future__ import annotations

from seldon_serving.cli.deployments import node_states


def test_wide_output_shows_router_branches_and_detector_observations() -> None:
    router = {
        "best_branch": 1,
        "branches": [
            {"branch": 0, "name": "a", "tries": 10, "successes": 2.5, "value": 0.25},
            {"branch": 1, "name": "b", "tries": 30, "successes": 24.0, "value": 0.8},
        ],
    }
    detector = {"observations": 200, "nb_outliers": 3, "threshold": 25.0}
    items = [
        {
            "manifest": {"metadata": {"name": "mymab"}},
            "predictors": [{"predictor": "p", "nodes": [{"name": "eg-router", "state": router}]}],
        },
        {
            "manifest": {"metadata": {"name": "myout"}},
            "predictors": [{"predictor": "p", "nodes": [{"name": "outlier-detector", "state": detector}]}],
        },
    ]
    text = node_states(items)
    assert "mymab/eg-router: router, best branch 1" in text
    rows = [line.split() for line in text.splitlines() if line.startswith("  1 ")]
    assert rows == [["1", "b", "30", "24", "0.8000"]]
    assert "myout/outlier-detector: detector, 200 observations, 3 outliers" in text
