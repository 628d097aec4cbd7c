import time
from typing import Any


class Spinning:
    """A model whose predict burns the CPU for `seconds` in pure Python (holding the GIL)."""

    def __init__(self, seconds: float = 3.0) -> None:
        self.seconds = float(seconds)

    def predict(self, X: Any, features_names: Any = None) -> Any:
        deadline = time.perf_counter() + self.seconds
        spins = 0
        while time.perf_counter() < deadline:
            spins += 1
        return X
