import time
from typing import Any


class Blocking:
    """A model whose predict sleeps `seconds` in plain synchronous code (a slow library call)."""

    def __init__(self, seconds: float = 3.0) -> None:
        self.seconds = float(seconds)

    def predict(self, X: Any, features_names: Any = None) -> Any:
        time.sleep(self.seconds)
        return X
