"""Seldon's A/B test router (implementation RANDOM_ABTEST): draw u in [0, 1), child 0 if
u <= ratioA, else child 1."""

from __future__ import annotations

import random
from typing import Any, ClassVar

from ._support import BuiltinParameterError, Children, as_seed


class RandomABTest:
    """ROUTER between exactly two children; `ratioA` is the share sent to the first."""

    children: ClassVar[Children] = Children(minimum=2, maximum=2)

    def __init__(self, ratioA: Any = None, seed: Any = None) -> None:
        if ratioA is None:
            raise BuiltinParameterError(
                "RANDOM_ABTEST needs a parameter ratioA (FLOAT between 0 and 1, the share sent to child 0)",
                parameter="ratioA",
                missing=True,
            )
        try:
            ratio = float(ratioA)
        except (TypeError, ValueError):
            ratio = float("nan")
        if isinstance(ratioA, bool) or not 0.0 <= ratio <= 1.0:  # NaN fails the range too
            raise BuiltinParameterError(
                f"ratioA must be a number between 0 and 1, got {ratioA!r}", parameter="ratioA"
            )
        self.ratio_a = ratio
        self._random = random.Random(as_seed(seed))

    def route(self, X: Any, features_names: Any = None) -> int:
        return 0 if self._random.random() <= self.ratio_a else 1
