"""Small helpers for driving a ComponentAdapter from sync tests."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from seldon_serving.components.adapter import ComponentAdapter
from seldon_serving.protocol.json_codec import decode_feedback, decode_message, dumps, encode_message, loads
from seldon_serving.protocol.message import SeldonMessage

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def as_json(msg: SeldonMessage) -> dict[str, Any]:
    """The answer exactly as a REST client would parse it."""
    return loads(dumps(encode_message(msg)))


def predict(obj: Any, request: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return as_json(run(ComponentAdapter(obj, **kwargs).predict(decode_message(request))))


def feedback(adapter: ComponentAdapter, body: dict[str, Any]) -> dict[str, Any]:
    return as_json(run(adapter.send_feedback(decode_feedback(body))))
