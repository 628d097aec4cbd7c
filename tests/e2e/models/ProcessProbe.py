from typing import Any

import numpy as np


class ProcessProbe:
    """For the `process` node tests: scales X by `scale`, adds up the rewards it is sent (shown
    in its tags, so a test sees feedback reach it), counts its calls in a custom metric and
    describes itself in init_metadata: everything a test compares between inline and process."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = float(scale)
        self.rewards = 0.0

    def predict(self, X: Any, features_names: Any = None) -> Any:
        return np.asarray(X, dtype=float) * self.scale

    def send_feedback(
        self, features: Any, feature_names: Any, reward: float, truth: Any, routing: Any = None
    ) -> Any:
        self.rewards += float(reward)
        return []

    def tags(self) -> dict[str, Any]:
        return {"rewards": self.rewards, "scale": self.scale}

    def metrics(self) -> list[dict[str, Any]]:
        return [{"type": "COUNTER", "key": "probe_calls", "value": 1}]

    def init_metadata(self) -> dict[str, Any]:
        return {
            "name": "probe",
            "versions": ["probe/v1"],
            "platform": "seldon",
            "inputs": [{"messagetype": "tensor", "schema": {"names": ["a", "b"], "shape": [2]}}],
            "outputs": [{"messagetype": "tensor", "schema": {"shape": [2]}}],
        }
