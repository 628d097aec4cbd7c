"""Property tests: every way a message can travel gives it back unchanged."""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf import struct_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from seldon_serving.protocol import json_codec as jc
from seldon_serving.protocol import proto_codec as pc
from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol.message import SeldonMessage
from tests.protocol._helpers import (
    assert_same_feedback,
    assert_same_message,
    feedbacks,
    finite,
    json_value,
    messages,
    metas,
    rect_lists,
    statuses,
    text,
    wire_json,
)

# per test, not a global profile: other suites in the same session keep their own settings
quick = settings(max_examples=50, deadline=None)


@quick
@given(messages())
def test_json_dict_to_message_to_json_dict(msg: SeldonMessage) -> None:
    body = wire_json(jc.encode_message(msg))
    decoded = jc.decode_message(body)
    assert_same_message(decoded, msg)
    assert wire_json(jc.encode_message(decoded)) == body


@quick
@given(messages())
def test_message_to_proto_to_message(msg: SeldonMessage) -> None:
    assert_same_message(pc.message_from_proto(pc.message_to_proto(msg)), msg)


@quick
@given(messages())
def test_message_to_proto_bytes_to_message(msg: SeldonMessage) -> None:
    raw = pc.message_to_proto(msg).SerializeToString()
    assert_same_message(pc.message_from_proto(pb.SeldonMessage.FromString(raw)), msg)


@quick
@given(messages(proto_safe=True))
def test_json_to_proto_and_back_to_the_same_json(msg: SeldonMessage) -> None:
    """A REST request forwarded over gRPC and answered back over REST is unchanged."""
    body = wire_json(jc.encode_message(msg))
    via_proto = pc.message_from_proto(
        pb.SeldonMessage.FromString(pc.message_to_proto(jc.decode_message(body)).SerializeToString())
    )
    assert wire_json(jc.encode_message(via_proto)) == body


@st.composite
def json_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Hand-written style request bodies (ints stay ints, ndarray may mix types)."""
    body: dict[str, Any] = {}
    meta = draw(metas())
    if meta:
        body["meta"] = meta
    status = draw(statuses)
    if status:
        body["status"] = status
    form = draw(st.sampled_from(["ndarray", "strData", "jsonData", "names", None]))
    leaves = st.integers(-(2**53), 2**53) | finite | text | st.booleans() | st.none()
    if form == "ndarray":
        body["data"] = {"names": draw(st.lists(text, max_size=3)), "ndarray": draw(rect_lists(leaves))}
    elif form == "names":
        body["data"] = {"names": draw(st.lists(text, min_size=1, max_size=3))}
    elif form == "strData":
        body["strData"] = draw(text)
    elif form == "jsonData":
        body["jsonData"] = draw(json_value)
    return body


@quick
@given(json_bodies())
def test_hand_written_json_survives_decode_and_encode_exactly(body: dict[str, Any]) -> None:
    assert wire_json(jc.encode_message(jc.decode_message(body))) == body


@quick
@given(feedbacks)
def test_feedback_round_trips_through_json_and_proto(fb: Any) -> None:
    assert_same_feedback(jc.decode_feedback(wire_json(jc.encode_feedback(fb))), fb)
    raw = pc.feedback_to_proto(fb).SerializeToString()
    assert_same_feedback(pc.feedback_from_proto(pb.Feedback.FromString(raw)), fb)


@quick
@given(st.lists(messages(), max_size=3))
def test_message_list_round_trips_through_json_and_proto(msgs: list[SeldonMessage]) -> None:
    from_json = jc.decode_message_list(wire_json(jc.encode_message_list(msgs)))
    raw = pc.message_list_to_proto(msgs).SerializeToString()
    from_proto = pc.message_list_from_proto(pb.SeldonMessageList.FromString(raw))
    assert len(from_json) == len(from_proto) == len(msgs)
    for a, b, original in zip(from_json, from_proto, msgs, strict=True):
        assert_same_message(a, original)
        assert_same_message(b, original)


@quick
@given(json_value)
def test_value_helpers_round_trip(value: Any) -> None:
    assert pc.value_to_python(pc.python_to_value(value)) == value
    assert (
        pc.value_to_python(struct_pb2.Value.FromString(pc.python_to_value(value).SerializeToString()))
        == value
    )


@quick
@given(
    hnp.arrays(
        np.float64, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=9), elements=st.floats()
    )
)
def test_numeric_ndarray_wire_fast_path_equals_generic_protobuf(arr: np.ndarray) -> None:
    fast = pc.numeric_to_list_value_bytes(arr)
    assert fast == pc.python_to_list_value(arr.tolist()).SerializeToString()
    back = pc.list_value_to_numeric(struct_pb2.ListValue.FromString(fast))
    if back is not None:  # small arrays take the generic path
        np.testing.assert_array_equal(back, arr)
        assert back.shape == arr.shape
