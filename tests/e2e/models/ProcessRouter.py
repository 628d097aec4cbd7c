from typing import Any


class ProcessRouter:
    """For the `process` node tests: routes to `branch` until it is sent a reward, then to the
    other branch (so a test sees feedback reach it)."""

    def __init__(self, branch: int = 1) -> None:
        self.branch = int(branch)
        self.rewards = 0.0

    def route(self, features: Any, feature_names: Any) -> int:
        return self.branch if self.rewards == 0 else 1 - self.branch

    def send_feedback(
        self, features: Any, feature_names: Any, reward: float, truth: Any, routing: Any = None
    ) -> Any:
        self.rewards += float(reward)
        return []
