"""`process` nodes: a user class in a child process of its own (being written)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from seldon_serving.engine.plan import NodePlan
from seldon_serving.protocol.errors import ServingError

if TYPE_CHECKING:
    from seldon_serving.engine.compile import CompileContext
    from seldon_serving.engine.runners import NodeRunner


class ProcessStartError(ServingError):
    """A node's process could not be started."""


def process_runner(plan: NodePlan, ctx: CompileContext) -> NodeRunner:
    raise ProcessStartError(f"node '{plan.name}': execution mode process is not available yet")
