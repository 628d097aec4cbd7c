from typing import Any

from seldon_serving.components.builtin.mock_classifier import MockClassifier


class SlowMock(MockClassifier):
    """The built-in mock classifier (`delaySecs` to play a slow model) as a user class that
    says on stdout when a request reaches it, so a test can wait for that instead of guessing
    a time."""

    async def predict(self, X: Any, features_names: list[str] | None = None, **kwargs: Any) -> Any:
        print("SlowMock: request arrived", flush=True)
        return await super().predict(X, features_names, **kwargs)
