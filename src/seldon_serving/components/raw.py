"""The whole-message side of `*_raw` methods: what they receive and how their answer is read.

A raw method gets exactly what seldon-core gives it over REST: a plain JSON dict (lists, not
numpy arrays), and returns a SeldonMessage dict (a protobuf message is accepted too).
json_codec is imported on first use, so classes without raw methods never load it.
"""

from __future__ import annotations

from typing import Any

from seldon_serving.protocol.errors import SeldonError, UserCodeError
from seldon_serving.protocol.message import Feedback, SeldonMessage

__all__ = ["encode_feedback_json", "encode_message_json", "encode_message_list_json", "raw_answer"]


def _plain_json(encoded: Any) -> Any:
    from seldon_serving.protocol.json_codec import dumps, loads

    return loads(dumps(encoded))


def encode_message_json(msg: SeldonMessage) -> Any:
    from seldon_serving.protocol.json_codec import encode_message

    return _plain_json(encode_message(msg))


def encode_message_list_json(msgs: list[SeldonMessage]) -> Any:
    from seldon_serving.protocol.json_codec import encode_message_list

    return _plain_json(encode_message_list(msgs))


def encode_feedback_json(fb: Feedback) -> Any:
    from seldon_serving.protocol.json_codec import encode_feedback

    return _plain_json(encode_feedback(fb))


def raw_answer(result: Any, raw_name: str) -> SeldonMessage:
    """A raw method's return value (a SeldonMessage dict, or a protobuf message) as a SeldonMessage."""
    if isinstance(result, SeldonMessage):
        return result
    from_proto = hasattr(result, "DESCRIPTOR") and hasattr(result, "SerializeToString")
    if from_proto:
        from google.protobuf import json_format

        result = json_format.MessageToDict(result)
    if not isinstance(result, dict):
        raise UserCodeError(f"{raw_name}() must return a SeldonMessage dict, got {type(result).__name__}")
    from seldon_serving.protocol.json_codec import decode_message

    try:
        answer = decode_message(result)
    except SeldonError as exc:
        raise UserCodeError(f"{raw_name}() returned an invalid SeldonMessage: {exc.info}") from exc
    if not from_proto:
        answer.verbatim = result
    return answer
