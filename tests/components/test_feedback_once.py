"""A feedback delivered twice for the same (puid, node) is counted once (SPEC 2, Seldon's retry trap)."""

from __future__ import annotations

import asyncio

import numpy as np

from seldon_serving.components.adapter import ComponentAdapter
from seldon_serving.components.builtin import EpsilonGreedy
from seldon_serving.protocol.message import NDARRAY, Feedback, SeldonMessage


def _feedback(puid: str, branch: int, reward: float) -> Feedback:
    return Feedback(
        request=SeldonMessage(form=NDARRAY, payload=[[1.0, 2.0]]),
        response=SeldonMessage(form=NDARRAY, payload=[[0.5]], meta={"puid": puid, "routing": {"eg": branch}}),
        reward=reward,
    )


def test_router_counts_a_redelivered_feedback_once() -> None:
    router = EpsilonGreedy(n_branches=2, epsilon=0.2, seed=1)
    adapter = ComponentAdapter(router, unit_id="eg", service_type="ROUTER")

    async def deliver() -> None:
        for _ in range(3):  # the same feedback, delivered three times
            await adapter.send_feedback(_feedback("puid-1", 1, 1.0))
        await adapter.send_feedback(_feedback("puid-2", 1, 0.0))

    asyncio.run(deliver())
    branches = router.state_summary()["branches"]
    assert branches[1]["tries"] == 2
    assert np.isclose(branches[1]["successes"], 1.0)
