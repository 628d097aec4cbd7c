from typing import Any


class Quick:
    """A model that answers at once."""

    def predict(self, X: Any, features_names: Any = None) -> Any:
        return X
