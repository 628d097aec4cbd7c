"""The demo model behind image `seldonio/mock_classifier` (Seldon's MeanClassifier).

Per row: proba = sigmoid(mean(row) - t), t = mean of the shipped `model.npy` plus
`intValue`; one output column named "proba".  Row [1.0, 2.0] gives 0.19518.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from ._support import BuiltinInputError, as_int, numeric_2d

# The shipped image's model.npy; only its mean (35/12) matters.
_SHIPPED_MODEL = np.array([[1, 5, 3, 4], [2, 3, 1, 4], [6, 3, 2, 1]], dtype=np.float64)


class MockClassifier:
    """MODEL: a stand-in classifier with an optional artificial delay (to play a slow model)."""

    class_names = ["proba"]

    def __init__(self, intValue: int = 0, delaySecs: int = 0) -> None:
        self.int_value = as_int("intValue", intValue)
        self.delay_secs = as_int("delaySecs", delaySecs, minimum=0)
        self.threshold = float(_SHIPPED_MODEL.mean()) + self.int_value

    async def predict(self, X: Any, features_names: list[str] | None = None, **kwargs: Any) -> np.ndarray:
        # async so that a delayed request waits without holding a worker thread:
        # other requests keep being served during the sleep.
        if self.delay_secs > 0:
            await asyncio.sleep(self.delay_secs)
        return self.probabilities(X)

    def probabilities(self, X: Any) -> np.ndarray:
        """The (rows x 1) probabilities, synchronously (what `predict` returns)."""
        rows = numeric_2d("mock_classifier", X)
        if rows.shape[1] == 0:
            raise BuiltinInputError("mock_classifier needs at least one feature per row")
        z = rows.mean(axis=1, keepdims=True) - self.threshold
        # The image's exact formula; exp overflow for very negative z is a correct 0.
        with np.errstate(over="ignore"):
            probabilities: np.ndarray = 1.0 / (1.0 + np.exp(-z))
        return probabilities
