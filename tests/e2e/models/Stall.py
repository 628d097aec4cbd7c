import time
from typing import Any


class Stall:
    """For the `process` node tests: blocks, in plain synchronous code (a stuck library call),
    as many seconds as the first feature says; 0 answers at once."""

    def predict(self, X: Any, features_names: Any = None) -> Any:
        seconds = float(X[0][0])
        if seconds > 0:
            time.sleep(seconds)
        return X
