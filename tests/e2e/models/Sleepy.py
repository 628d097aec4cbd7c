import asyncio
from typing import Any


class Sleepy:
    """A model that takes `seconds` to answer (without blocking its server): a hung or slow
    component for the fault tests.  It says on stdout when a request reaches it, so a test
    can wait for that instead of guessing a time."""

    def __init__(self, seconds: float = 3.0) -> None:
        self.seconds = float(seconds)

    async def predict(self, X: Any, features_names: Any = None) -> Any:
        print("Sleepy: request arrived", flush=True)
        await asyncio.sleep(self.seconds)
        return X
