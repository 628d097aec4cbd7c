"""The engine's stand-ins of Seldon's graph (implementations SIMPLE_MODEL and SIMPLE_ROUTER):
a model that always answers the same three probabilities and a router that always picks
the first child, for trying a graph before any real component exists."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ._support import Children

# What Seldon's engine answered for SIMPLE_MODEL, metrics included.
SIMPLE_MODEL_METRICS = (
    {"key": "mymetric_counter", "type": "COUNTER", "value": 1.0},
    {"key": "mymetric_gauge", "type": "GAUGE", "value": 100.0},
    {"key": "mymetric_timer", "type": "TIMER", "value": 22.1},
)
_ANSWER = np.array([[0.1, 0.9, 0.5]])


class SimpleModel:
    """MODEL: ignores its input; names class0..class2, values [[0.1, 0.9, 0.5]]."""

    class_names: ClassVar[list[str]] = ["class0", "class1", "class2"]

    def predict(self, X: Any, features_names: Any = None) -> np.ndarray:
        return _ANSWER.copy()

    def metrics(self) -> list[dict[str, Any]]:
        return [dict(metric) for metric in SIMPLE_MODEL_METRICS]


class SimpleRouter:
    """ROUTER: every request goes to the first child."""

    children: ClassVar[Children] = Children(minimum=1)

    def route(self, X: Any, features_names: Any = None) -> int:
        return 0
