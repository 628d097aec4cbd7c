"""How the engine talks to one graph node, wherever it runs.

Every runner offers the same five async steps; the graph walk never knows
whether a node is in-process, built in, or behind REST/gRPC.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from seldon_serving.components.adapter import ComponentAdapter
from seldon_serving.protocol.message import Feedback, SeldonMessage


class NodeRunner(Protocol):
    async def transform_input(self, msg: SeldonMessage) -> SeldonMessage: ...

    async def transform_output(self, msg: SeldonMessage) -> SeldonMessage: ...

    async def route(self, msg: SeldonMessage) -> int: ...

    async def aggregate(self, msgs: list[SeldonMessage]) -> SeldonMessage: ...

    async def send_feedback(self, feedback: Feedback) -> None: ...

    async def close(self) -> None: ...

    async def metadata(self) -> dict[str, Any]:
        """The node's model metadata document (SeldonModelMetadata as a dict)."""
        ...

    def describe(self) -> str:
        """How this node runs, for `seldon get` ("in-process MyModel", "REST 10.0.0.1:9000", ...)."""
        ...


class LocalRunner:
    """A Python class run in-process through the component adapter: plain awaits, no serialisation."""

    def __init__(
        self,
        adapter: ComponentAdapter,
        node: str,
        service_type: str,
        label: str,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.adapter = adapter
        self.executor = executor  # a `thread` node's own pool (shut down with the node)
        self.node = node
        self.label = label
        self._input = adapter.predict if service_type == "MODEL" else adapter.transform_input
        # Whether a call can yield to the event loop (async user methods or a thread pool):
        # only then can a per-node timeout interrupt it.
        self.awaits_anything = adapter.awaits_anything

    async def transform_input(self, msg: SeldonMessage) -> SeldonMessage:
        return await self._input(msg)

    async def transform_output(self, msg: SeldonMessage) -> SeldonMessage:
        return await self.adapter.transform_output(msg)

    async def route(self, msg: SeldonMessage) -> int:
        return await self.adapter.route_branch(msg)

    async def aggregate(self, msgs: list[SeldonMessage]) -> SeldonMessage:
        return await self.adapter.aggregate(msgs)

    async def send_feedback(self, feedback: Feedback) -> None:
        await self.adapter.send_feedback(feedback)

    async def close(self) -> None:
        if self.executor is not None:
            # Threads still running a call that timed out are not waited for: they finish alone.
            self.executor.shutdown(wait=False, cancel_futures=True)

    async def metadata(self) -> dict[str, Any]:
        return self.adapter.metadata()

    def describe(self) -> str:
        return f"{'threads' if self.executor is not None else 'in-process'} {self.label}"

    @property
    def user_object(self) -> Any:
        return self.adapter.user_object
