"""What the fuzz tests found in the codecs, and the NaN/Infinity policy: refused input is a
BadRequest naming the field, never another exception (which an edge would answer 500)."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from google.protobuf import json_format

from seldon_serving.protocol import arrays
from seldon_serving.protocol import json_codec as jc
from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol.errors import BadRequest
from seldon_serving.protocol.message import SeldonMessage


def nested(depth: int, leaf: object = 1) -> object:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


# --- NaN and Infinity ----------------------------------------------------------------------


@pytest.mark.parametrize("body", [b'{"data": {"ndarray": [[NaN]]}}', b'{"reward": Infinity}', b"[-Infinity]"])
def test_nan_and_infinity_literals_are_invalid_json(body: bytes) -> None:
    with pytest.raises(BadRequest, match=r"^Invalid JSON"):
        jc.loads(body)


def test_proto3_strings_for_nan_and_infinity_are_read_as_floats() -> None:
    msg = jc.decode_message(
        jc.loads(b'{"data": {"tensor": {"shape": [3], "values": ["NaN", "Infinity", "-Infinity"]}}}')
    )
    values = np.asarray(msg.payload)
    assert math.isnan(values[0]) and values[1] == math.inf and values[2] == -math.inf
    for dtype, field in (("DT_FLOAT", "floatVal"), ("DT_DOUBLE", "doubleVal")):
        tensor = {"dtype": dtype, "tensorShape": {"dim": [{"size": "2"}]}, field: ["NaN", "-Infinity"]}
        values = np.asarray(jc.decode_message({"data": {"tftensor": tensor}}).payload)
        assert math.isnan(values[0]) and values[1] == -math.inf


def test_non_finite_answers_follow_proto3_json_in_tensors_and_are_null_in_ndarray() -> None:
    values = np.array([[1.0, np.nan], [np.inf, -np.inf]])
    tensor = jc.loads(jc.dumps(jc.encode_message(SeldonMessage("tensor", values, ["a", "b"]))))
    assert tensor["data"]["tensor"]["values"] == [1.0, "NaN", "Infinity", "-Infinity"]
    # SeldonClient parses answers with json_format, which refuses null in a repeated double
    parsed = json_format.ParseDict(tensor, pb.SeldonMessage())
    assert math.isnan(parsed.data.tensor.values[1]) and parsed.data.tensor.values[3] == -math.inf
    ndarray = jc.loads(jc.dumps(jc.encode_message(SeldonMessage("ndarray", values, ["a", "b"]))))
    assert ndarray["data"]["ndarray"] == [[1.0, None], [None, None]]  # a ListValue has no NaN
    json_format.ParseDict(ndarray, pb.SeldonMessage())


def test_non_finite_metric_values_are_proto3_strings() -> None:
    meta = {"metrics": [{"key": "k", "type": "GAUGE", "value": math.nan, "bins": [1.0, math.inf]}]}
    encoded = jc.loads(jc.dumps(jc.encode_message(SeldonMessage(meta=meta))))
    assert encoded["meta"]["metrics"][0]["value"] == "NaN"
    assert encoded["meta"]["metrics"][0]["bins"] == [1.0, "Infinity"]
    json_format.ParseDict(encoded, pb.SeldonMessage())


def test_finite_tensor_values_stay_a_numpy_array() -> None:
    # the hot path: no list is built when every value is finite
    values = np.arange(6.0)
    assert jc.json_doubles(values) is values


# --- answers orjson cannot write -------------------------------------------------------------


@pytest.mark.parametrize("depth", [255, 400, 1023])
def test_answers_nested_deeper_than_orjson_writes_are_still_written(depth: int) -> None:
    # orjson reads 1024 levels but writes 254: a client's jsonData echoed back used to fail
    assert (
        jc.dumps({"jsonData": nested(depth)}) == b'{"jsonData":' + b"[" * depth + b"1" + b"]" * depth + b"}"
    )


def test_slow_path_writes_what_orjson_refuses_and_keeps_the_nan_policy() -> None:
    value = nested(300, {"big": 2**70, 3: "key", "surrogate": "x\udc80", "f": [np.float32(1.5), math.nan]})
    leaf = orjson.loads(jc.dumps(value))
    for _ in range(300):
        leaf = leaf[0]
    assert leaf == {"big": 2**70, "3": "key", "surrogate": "x\ufffd", "f": [1.5, None]}


def test_objects_nothing_can_write_are_still_a_type_error() -> None:
    with pytest.raises(TypeError):
        jc.dumps({"jsonData": nested(300, object())})


# --- tensors that would not fit in memory -------------------------------------------------------


@pytest.mark.parametrize(
    "dims",
    [
        ["100000", "100000"],  # 10^10 values from one: 37 GiB
        ["4611686018427387904", "4"],  # more than numpy can address ("array is too big")
    ],
)
@pytest.mark.parametrize("given", [{}, {"floatVal": [1.0]}])
def test_a_tftensor_filled_from_one_value_is_bounded(dims: list[str], given: dict[str, object]) -> None:
    tensor = {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": d} for d in dims]}, **given}
    with pytest.raises(BadRequest, match=r"data\.tftensor\.tensorShape .* a filled tensor may hold at most"):
        jc.decode_message({"data": {"tftensor": tensor}})


def test_a_filled_tftensor_within_the_limit_still_works() -> None:
    side = math.isqrt(arrays.MAX_FILL)
    tensor = {"dtype": "DT_UINT8", "tensorShape": {"dim": [{"size": str(side)}, {"size": str(side)}]}}
    assert np.asarray(jc.decode_message({"data": {"tftensor": tensor}}).payload).shape == (side, side)


def test_tensor_content_for_an_impossible_shape_is_refused_by_its_length() -> None:
    tensor = {
        "dtype": "DT_FLOAT",
        "tensorShape": {"dim": [{"size": "4611686018427387904"}, {"size": "4"}]},
        "tensorContent": "AAAAAA==",
    }
    with pytest.raises(BadRequest, match="tensorContent has 4 bytes"):
        jc.decode_message({"data": {"tftensor": tensor}})


def test_a_tensor_with_more_dimensions_than_numpy_supports_is_a_400() -> None:
    # found by the gateway fuzz test: an empty tensor whose shape had 34 dimensions answered 500
    shape = [799131, 15057, 1930] + [1] * 30 + [0]
    with pytest.raises(BadRequest, match="34 dimensions"):
        jc.decode_message({"data": {"tensor": {"shape": shape, "values": []}}})
