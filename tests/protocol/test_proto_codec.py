"""Protobuf codec: same in-memory messages as the JSON codec, same validation, fast arrays."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf import json_format, struct_pb2

from seldon_serving.protocol import json_codec as jc
from seldon_serving.protocol import proto_codec as pc
from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol.errors import BadMetadata, BadRequest
from seldon_serving.protocol.message import Feedback, SeldonMessage
from tests.protocol._helpers import assert_same_message, wire_json

SAMPLES = [
    {"data": {"names": ["a", "b"], "tensor": {"shape": [2, 2], "values": [0, 0, 1, 1]}}},
    {"data": {"names": ["a", "b"], "ndarray": [[0.5, 0.0], [1.0, 1.0]]}},
    {"data": {"names": ["a"], "ndarray": [["text", 1.0, True, None, {"k": [1.0]}]]}},
    {
        "data": {
            "tftensor": {
                "dtype": "DT_FLOAT",
                "tensorShape": {"dim": [{"size": "1"}, {"size": "2"}]},
                "floatVal": [1, 2],
            }
        }
    },
    {
        "data": {
            "tftensor": {
                "dtype": "DT_STRING",
                "tensorShape": {"dim": [{"size": "2"}]},
                "stringVal": ["YWI=", ""],
            }
        }
    },
    {"data": {"names": ["only", "names"]}},
    {"strData": "hello world"},
    {"binData": "aGVsbG8="},
    {"jsonData": {"any": "json", "structure": [1.0, 2.0, 3.0], "flag": False, "none": None}},
    {"jsonData": "just a string"},
    {"customData": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "1.500s"}},
    {
        "meta": {
            "puid": "abc",
            "tags": {"k": "v", "n": 2.0, "nested": {"l": [1.0, "x"]}},
            "routing": {"eg-router": 1, "all": -1},
            "requestPath": {"classifier": "seldonio/mock_classifier:1.0"},
            "metrics": [
                {"key": "mycounter", "type": "TIMER", "value": 1.5, "tags": {"t": "x"}, "bins": [0.5, 1.0]}
            ],
        },
        "data": {"names": ["proba"], "ndarray": [[0.43]]},
    },
    {"status": {"code": 203, "info": "it broke", "reason": "Microservice error", "status": "FAILURE"}},
    {},
]


@pytest.mark.parametrize("body", SAMPLES)
def test_json_and_proto_decode_to_the_same_message(body: dict) -> None:
    from_json = jc.decode_message(body)
    # the reference encoder: protobuf's own JSON parser on the same body
    reference = json_format.ParseDict(body, pb.SeldonMessage())
    from_proto = pc.message_from_proto(pb.SeldonMessage.FromString(reference.SerializeToString()))
    assert_same_message(from_json, from_proto)


@pytest.mark.parametrize("body", SAMPLES)
def test_our_proto_equals_protobufs_own_json_parse(body: dict) -> None:
    ours = pc.message_to_proto(jc.decode_message(body))
    reference = json_format.ParseDict(body, pb.SeldonMessage())
    if "tftensor" in body.get("data", {}):
        # we write tensorContent as TensorFlow does; compare the decoded arrays instead
        assert_same_message(pc.message_from_proto(ours), pc.message_from_proto(reference))
    else:
        assert ours == reference


def test_ndarray_numbers_come_back_as_doubles_as_in_seldon() -> None:
    msg = pc.message_from_proto(pc.message_to_proto(jc.decode_message({"data": {"ndarray": [[1, 2]]}})))
    assert wire_json(jc.encode_message(msg))["data"]["ndarray"] == [[1.0, 2.0]]
    assert isinstance(wire_json(jc.encode_message(msg))["data"]["ndarray"][0][0], float)


def test_ndarray_bools_mixed_with_numbers_stay_bools() -> None:
    rows = [[True, 1.5] * 40]  # large enough for the numeric fast path to be considered
    back = pc.message_from_proto(pc.message_to_proto(SeldonMessage(form="ndarray", payload=rows)))
    assert back.payload == rows
    assert back.payload[0][0] is True


@pytest.mark.parametrize("shape", [(1,), (70,), (3, 40), (2, 3, 20), (4, 0), (0,), (0, 3), (1, 1, 1, 100)])
def test_numeric_ndarray_wire_bytes_are_exactly_protobufs(shape: tuple[int, ...]) -> None:
    arr = np.random.default_rng(0).normal(size=shape)
    fast = struct_pb2.ListValue.FromString(pc.numeric_to_list_value_bytes(arr))
    generic = pc.python_to_list_value(arr.tolist())
    assert fast.SerializeToString() == generic.SerializeToString()
    if arr.size >= 64:
        np.testing.assert_array_equal(pc.list_value_to_numeric(generic), arr)


def test_numeric_ndarray_fast_path_falls_back_on_anything_irregular() -> None:
    mixed = pc.python_to_list_value([[1.0] * 40, [2.0] * 39 + ["x"]])
    assert pc.list_value_to_numeric(mixed) is None
    ragged = pc.python_to_list_value([[1.0] * 40, [2.0] * 41])
    assert pc.list_value_to_numeric(ragged) is None
    deeper = pc.python_to_list_value([[1.0] * 40, [[2.0]] * 40])
    assert pc.list_value_to_numeric(deeper) is None


def test_ragged_ndarray_over_grpc_is_a_bad_request() -> None:
    request = pb.SeldonMessage()
    pc.python_to_list_value([[1.0] * 40, [2.0] * 41], request.data.ndarray)
    with pytest.raises(BadRequest, match=r"^data\.ndarray is ragged"):
        pc.message_from_proto(request)


def test_large_numpy_ndarray_round_trips() -> None:
    arr = np.random.default_rng(1).random((100, 100))
    back = pc.message_from_proto(pc.message_to_proto(SeldonMessage(form="ndarray", payload=arr)))
    np.testing.assert_array_equal(back.array(), arr)
    ints = np.arange(200).reshape(2, 100)
    back = pc.message_from_proto(pc.message_to_proto(SeldonMessage(form="ndarray", payload=ints.tolist())))
    np.testing.assert_array_equal(back.array(), ints.astype(float))


def test_tensor_round_trips_and_is_read_into_float64() -> None:
    arr = np.arange(12, dtype=np.int32).reshape(3, 4)
    out = pc.message_to_proto(SeldonMessage(form="tensor", payload=arr))
    assert list(out.data.tensor.shape) == [3, 4]
    assert list(out.data.tensor.values) == list(range(12))
    back = pc.message_from_proto(out)
    assert back.payload.dtype == np.float64
    np.testing.assert_array_equal(back.payload, arr)


def test_empty_tensor_and_ndarray_keep_their_form() -> None:
    for form, payload in (("tensor", np.zeros((0,))), ("ndarray", [])):
        out = pc.message_to_proto(SeldonMessage(form=form, payload=payload))
        assert out.data.WhichOneof("data_oneof") == form
        assert pc.message_from_proto(out).form == form


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda m: (m.data.tensor.shape.extend([2, 2]), m.data.tensor.values.extend([1, 2, 3])),
            "data.tensor.shape [2,2] does not match 3 values",
        ),
        (lambda m: setattr(m.data.tftensor, "dtype", 0), "data.tftensor.dtype must name a TensorFlow dtype"),
        (
            lambda m: (setattr(m.data.tftensor, "dtype", 1), m.data.tftensor.double_val.append(1.0)),
            "data.tftensor holds DT_FLOAT, whose values belong in float_val, not double_val",
        ),
        (
            lambda m: (
                setattr(m.data.tftensor, "dtype", 1),
                m.data.tftensor.tensor_shape.dim.add(size=3),
                m.data.tftensor.float_val.extend([1, 2]),
            ),
            "data.tftensor.float_val has 2 values but tensorShape [3] needs 3",
        ),
    ],
)
def test_bad_proto_messages_name_the_field(build: object, message: str) -> None:
    request = pb.SeldonMessage()
    build(request)  # type: ignore[operator]
    with pytest.raises(BadRequest) as info:
        pc.message_from_proto(request)
    assert str(info.value).startswith(message)


def test_feedback_errors_carry_the_message_path() -> None:
    fb = pb.Feedback()
    fb.truth.data.tensor.shape.append(2)
    with pytest.raises(BadRequest, match=r"^truth\.data\.tensor\.shape \[2\] does not match 0 values"):
        pc.feedback_from_proto(fb)


def test_tftensor_from_proto_matches_tensorflow_rules() -> None:
    tensor = pb.SeldonMessage()
    tf = tensor.data.tftensor
    tf.dtype = 19  # DT_HALF: float16 bit patterns in half_val
    tf.tensor_shape.dim.add(size=2)
    tf.half_val.extend([15872, 15360])
    msg = pc.message_from_proto(tensor)
    assert msg.tf_dtype == "DT_HALF"
    np.testing.assert_array_equal(msg.payload, np.array([1.5, 1.0], dtype=np.float16))


def test_tftensor_to_proto_uses_tensor_content() -> None:
    out = pc.message_to_proto(
        SeldonMessage(form="tftensor", payload=np.array([[1.0, 2.0]], dtype=np.float32))
    )
    tf = out.data.tftensor
    assert tf.dtype == 1
    assert [d.size for d in tf.tensor_shape.dim] == [1, 2]
    assert tf.tensor_content == np.array([1.0, 2.0], dtype="<f4").tobytes()


def test_value_helpers_convert_every_json_kind() -> None:
    value = {"s": "x", "n": 1.5, "b": True, "z": None, "l": [1.0, ["y"]], "d": {"e": {}}}
    assert pc.value_to_python(pc.python_to_value(value)) == value
    assert pc.value_to_python(struct_pb2.Value()) is None
    converted = pc.value_to_python(
        pc.python_to_value([np.float32(0.5), np.int64(3), np.bool_(False), np.array([1, 2])])
    )
    assert converted == [0.5, 3.0, False, [1.0, 2.0]]
    assert pc.python_to_value([]).WhichOneof("kind") == "list_value"
    with pytest.raises(TypeError):
        pc.python_to_value(object())


def test_unknown_custom_data_type_keeps_its_bytes() -> None:
    out = pb.SeldonMessage()
    out.customData.type_url = "type.googleapis.com/example.Unknown"
    out.customData.value = b"\x01\x02"
    msg = pc.message_from_proto(out)
    assert msg.payload == {"@type": "type.googleapis.com/example.Unknown", "value": "AQI="}
    assert pc.message_to_proto(msg) == out


def test_unknown_custom_data_from_json_cannot_go_over_grpc() -> None:
    msg = jc.decode_message({"customData": {"@type": "type.googleapis.com/example.Unknown", "x": 1}})
    with pytest.raises(BadRequest, match="not known here"):
        pc.message_to_proto(msg)


def test_feedback_and_message_list() -> None:
    fb = Feedback(response=SeldonMessage(meta={"routing": {"r": 2}}), reward=0.5)
    back = pc.feedback_from_proto(pb.Feedback.FromString(pc.feedback_to_proto(fb).SerializeToString()))
    assert back.routing() == {"r": 2} and back.reward == 0.5 and back.request is None
    msgs = [SeldonMessage(form="strData", payload="a"), SeldonMessage()]
    assert pc.message_list_from_proto(pc.message_list_to_proto(msgs)) == msgs


def test_model_metadata_to_proto() -> None:
    meta = {
        "name": "my-model",
        "versions": ["v1"],
        "platform": "seldon",
        "inputs": [{"messagetype": "tensor", "schema": {"names": ["a"]}, "shape": [2]}],
        "outputs": [{"messagetype": "tensor", "schema": {"shape": [1]}}],
        "custom": {"author": "me"},
        "ignored": True,
    }
    out = pc.model_metadata_to_proto(meta)
    assert out.name == "my-model" and list(out.inputs[0].shape) == [2]
    assert out.custom["author"] == "me"
    with pytest.raises(BadMetadata, match=r"^Invalid metadata"):
        pc.model_metadata_to_proto({"versions": "not-a-list"})
