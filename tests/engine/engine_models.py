"""Small user classes the engine tests run in-process (MODEL_NAME tests.engine.engine_models.X)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np


class Scale:
    """TRANSFORMER / OUTPUT_TRANSFORMER: multiplies by `factor`, tags what it did."""

    def __init__(self, factor: float = 2.0, tag: str = "scale") -> None:
        self.factor = factor
        self.tag = tag

    def transform_input(self, X: Any, features_names: Any = None) -> Any:
        return np.asarray(X, dtype=float) * self.factor

    def transform_output(self, X: Any, features_names: Any = None) -> Any:
        return np.asarray(X, dtype=float) * self.factor

    def tags(self) -> dict[str, Any]:
        return {self.tag: self.factor}


class RowSum:
    """MODEL: the sum of each row, one column; counts its calls as a custom metric."""

    def __init__(self, offset: float = 0.0, tag: str = "model") -> None:
        self.offset = offset
        self.tag = tag
        self.calls = 0
        self.feedback: list[tuple[float, Any]] = []

    def predict(self, X: Any, features_names: Any = None) -> Any:
        self.calls += 1
        return np.asarray(X, dtype=float).sum(axis=1, keepdims=True) + self.offset

    def tags(self) -> dict[str, Any]:
        return {self.tag: True}

    def metrics(self) -> list[dict[str, Any]]:
        return [{"type": "COUNTER", "key": f"{self.tag}_calls", "value": 1}]

    def send_feedback(
        self, features: Any, feature_names: Any, reward: float, truth: Any, routing=None
    ) -> None:
        self.feedback.append((reward, routing))


class FixedRouter:
    """ROUTER: always `branch`; remembers the routing it is told about in feedback."""

    def __init__(self, branch: int = 0) -> None:
        self.branch = branch
        self.feedback: list[tuple[float, Any]] = []

    def route(self, X: Any, features_names: Any = None) -> int:
        return self.branch

    def send_feedback(
        self, features: Any, feature_names: Any, reward: float, truth: Any, routing=None
    ) -> None:
        self.feedback.append((reward, routing))


class MaxCombiner:
    """COMBINER: the element-wise maximum of the children's answers."""

    def aggregate(self, Xs: Any, features_names: Any = None) -> Any:
        return np.max(np.array([np.asarray(x, dtype=float) for x in Xs]), axis=0)

    def tags(self) -> dict[str, Any]:
        return {"combined": True}


class Sleepy:
    """MODEL: answers after `seconds` (async, so the event loop keeps serving)."""

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds

    async def predict(self, X: Any, features_names: Any = None) -> Any:
        await asyncio.sleep(self.seconds)
        return X


class Boom:
    """MODEL: always raises."""

    def predict(self, X: Any, features_names: Any = None) -> Any:
        raise ValueError("boom on purpose")
