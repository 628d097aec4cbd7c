"""JSON codec: every data form as Seldon's docs write it, and errors that name the field."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from seldon_serving.protocol import json_codec as jc
from seldon_serving.protocol.errors import BadRequest
from seldon_serving.protocol.message import SeldonMessage, failure_status
from tests.protocol._helpers import wire_json

# --- loads / dumps ---------------------------------------------------------------------


def test_loads_reports_malformed_json_as_bad_request() -> None:
    with pytest.raises(BadRequest, match=r"^Invalid JSON: ") as info:
        jc.loads(b'{"data": ')
    assert info.value.http_status == 400


def test_loads_accepts_str_and_bytes() -> None:
    assert jc.loads('{"strData": "x"}') == jc.loads(b'{"strData": "x"}') == {"strData": "x"}


@pytest.mark.parametrize(
    "value",
    [
        np.arange(12.0).reshape(3, 4)[:, ::2],  # non-contiguous
        np.array([[1.5, 2.5]], dtype=np.longdouble),  # a dtype orjson does not know
        np.array([["a", "b"]]),
        np.array([1, "x", None], dtype=object),
    ],
)
def test_dumps_writes_any_numpy_array_like_its_tolist(value: np.ndarray) -> None:
    assert orjson.loads(jc.dumps({"v": value})) == {"v": value.tolist()}


def test_dumps_writes_numpy_scalars_and_bytes() -> None:
    out = orjson.loads(jc.dumps([np.float32(1.5), np.int64(3), np.bool_(True), np.longdouble(2.0), b"hi"]))
    assert out == [1.5, 3, True, 2.0, "hi"]


def test_dumps_refuses_unknown_objects() -> None:
    with pytest.raises(TypeError):
        jc.dumps({"v": object()})


# --- decoding each form -------------------------------------------------------------------


def test_tensor_becomes_float64_array_of_its_shape() -> None:
    msg = jc.decode_message(
        {"data": {"names": ["a", "b"], "tensor": {"shape": [2, 2], "values": [0, 0, 1, 1]}}}
    )
    assert msg.form == "tensor"
    assert msg.names == ["a", "b"]
    assert msg.payload.dtype == np.float64
    np.testing.assert_array_equal(msg.payload, [[0.0, 0.0], [1.0, 1.0]])


def test_tensor_values_may_be_numeric_strings_like_proto3_json() -> None:
    msg = jc.decode_message({"data": {"tensor": {"shape": ["2"], "values": ["1.5", "NaN"]}}})
    assert msg.payload[0] == 1.5 and np.isnan(msg.payload[1])


def test_tensor_without_shape_is_one_dimensional() -> None:
    assert jc.decode_message({"data": {"tensor": {"values": [1, 2, 3]}}}).payload.shape == (3,)
    assert jc.decode_message({"data": {"tensor": {"values": [7]}}}).payload.shape == ()


def test_ndarray_keeps_the_nested_list_including_mixed_types() -> None:
    body = {"data": {"names": ["a"], "ndarray": [["text", 1.0], ["more", 2]]}}
    msg = jc.decode_message(body)
    assert msg.form == "ndarray"
    assert msg.payload == [["text", 1.0], ["more", 2]]
    assert msg.array().shape == (2, 2)


def test_tftensor_with_typed_values() -> None:
    body = {
        "data": {
            "tftensor": {
                "dtype": "DT_FLOAT",
                "tensorShape": {"dim": [{"size": "1"}, {"size": "2"}]},
                "floatVal": [1, 2],
            }
        }
    }
    msg = jc.decode_message(body)
    assert msg.tf_dtype == "DT_FLOAT"
    assert msg.payload.dtype == np.float32
    np.testing.assert_array_equal(msg.payload, [[1.0, 2.0]])


def test_tftensor_accepts_snake_case_names_int_dtype_and_int64_strings() -> None:
    body = {
        "data": {"tftensor": {"dtype": 9, "tensor_shape": {"dim": [{"size": 2}]}, "int64_val": ["5", "-6"]}}
    }
    msg = jc.decode_message(body)
    assert msg.tf_dtype == "DT_INT64"
    np.testing.assert_array_equal(msg.payload, np.array([5, -6], dtype=np.int64))


def test_tftensor_tensor_content_is_little_endian_raw_bytes() -> None:
    content = np.array([[1.0, 2.0], [3.0, 4.0]], dtype="<f8").tobytes()
    body = {
        "data": {
            "tftensor": {
                "dtype": "DT_DOUBLE",
                "tensorShape": {"dim": [{"size": "2"}, {"size": "2"}]},
                "tensorContent": jc.b64encode(content),
            }
        }
    }
    payload = jc.decode_message(body).payload
    np.testing.assert_array_equal(payload, [[1.0, 2.0], [3.0, 4.0]])
    payload[0, 0] = 9.0  # a user's model may write into its input


def test_tftensor_strings_half_and_bool() -> None:
    def tf(dtype: str, **fields: object) -> np.ndarray:
        tensor = {"dtype": dtype, "tensorShape": {"dim": [{"size": "2"}]}, **fields}
        return jc.decode_message({"data": {"tftensor": tensor}}).payload

    assert tf("DT_STRING", stringVal=["YWI=", "Yw=="]).tolist() == [b"ab", b"c"]
    np.testing.assert_array_equal(tf("DT_HALF", halfVal=[15872, 15360]), np.array([1.5, 1.0], np.float16))
    assert tf("DT_BOOL", boolVal=[True, False]).tolist() == [True, False]
    assert tf("DT_COMPLEX64", scomplexVal=[1, 2, 3, 4]).tolist() == [1 + 2j, 3 + 4j]


def test_tftensor_single_value_fills_the_shape_as_tensorflow_does() -> None:
    tensor = {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "2"}, {"size": "3"}]}, "floatVal": [7]}
    np.testing.assert_array_equal(
        jc.decode_message({"data": {"tftensor": tensor}}).payload, np.full((2, 3), 7.0)
    )


def test_scalar_tftensor_has_empty_shape() -> None:
    msg = jc.decode_message({"data": {"tftensor": {"dtype": "DT_FLOAT", "tensorShape": {}, "floatVal": [3]}}})
    assert msg.payload.shape == ()
    assert jc.encode_message(msg)["data"]["tftensor"]["tensorShape"] == {}


def test_str_bin_json_and_custom_data() -> None:
    assert jc.decode_message({"strData": "hello"}).payload == "hello"
    assert jc.decode_message({"binData": "aGVsbG8="}).payload == b"hello"
    assert jc.decode_message({"binData": "aGVsbG8"}).payload == b"hello"  # padding optional
    assert jc.decode_message({"binData": "_-8="}).payload == b"\xff\xef"  # URL-safe alphabet
    assert jc.decode_message({"jsonData": {"any": ["json", 1]}}).payload == {"any": ["json", 1]}
    assert jc.decode_message({"jsonData": None}).form == "jsonData"
    custom = {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "1s"}
    assert jc.decode_message({"customData": custom}).payload == custom


def test_empty_object_is_a_message_without_data_and_unknown_keys_are_ignored() -> None:
    assert jc.decode_message({}) == SeldonMessage()
    assert jc.decode_message({"something": 1, "data": None}) == SeldonMessage()


def test_meta_is_normalized() -> None:
    body = {
        "meta": {
            "puid": "abc",
            "tags": {"k": "v"},
            "routing": {"router": "1"},
            "requestPath": {"model": "image:1"},
            "metrics": [{"type": 1, "key": "g", "value": "2.5"}, {"key": "c"}],
        }
    }
    assert jc.decode_message(body).meta == {
        "puid": "abc",
        "tags": {"k": "v"},
        "routing": {"router": 1},
        "requestPath": {"model": "image:1"},
        "metrics": [
            {"key": "g", "type": "GAUGE", "value": 2.5},
            {"key": "c", "type": "COUNTER", "value": 0.0},
        ],
    }


def test_empty_meta_parts_are_dropped() -> None:
    body = {"meta": {"puid": "", "tags": {}, "routing": {}, "requestPath": {}, "metrics": []}}
    assert jc.decode_message(body).meta == {}


def test_status_accepts_enum_number_and_fills_defaults() -> None:
    msg = jc.decode_message({"status": {"code": -1, "info": "bad", "status": 1}})
    assert msg.status == {"code": -1, "info": "bad", "reason": "", "status": "FAILURE"}


# --- errors name the field --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1, 2], "a SeldonMessage must be a JSON object, not a list"),
        (
            {"data": {"tensor": {"shape": [2, 2], "values": [1, 2, 3]}}},
            "data.tensor.shape [2,2] does not match 3 values",
        ),
        (
            {"data": {"tensor": {"shape": [2], "values": ["a", "b"]}}},
            "data.tensor.values must be a list of numbers",
        ),
        (
            {"data": {"tensor": {"shape": [2], "values": [1, None]}}},
            "data.tensor.values must be a list of numbers",
        ),
        ({"data": {"tensor": {"values": [[1], [2]]}}}, "data.tensor.values must be a list of numbers"),
        ({"data": {"tensor": {"values": 3}}}, "data.tensor.values must be a list of numbers"),
        ({"data": {"tensor": {"shape": ["x"], "values": [1]}}}, "data.tensor.shape[0] must be an integer"),
        ({"data": {"tensor": {"shape": [-1], "values": []}}}, "data.tensor.shape [-1] has a negative size"),
        ({"data": {"ndarray": [[1, 2], [3]]}}, "data.ndarray is ragged"),
        ({"data": {"ndarray": [[1, 2], 3]}}, "data.ndarray is ragged"),
        ({"data": {"ndarray": {"a": 1}}}, "data.ndarray must be a list"),
        ({"data": {"names": ["a", 1], "ndarray": []}}, "data.names must be a list of strings"),
        ({"data": {"ndarray": [], "tensor": {}}}, "data.tensor and ndarray are set"),
        ({"data": [1]}, "data must be an object"),
        ({"strData": "x", "binData": "eA=="}, "binData and strData are set"),
        ({"strData": 3}, "strData must be a string"),
        ({"binData": "not base64!"}, "binData is not valid base64"),
        ({"binData": "z\u009e"}, "binData is not valid base64"),  # non-ASCII (found by the gateway fuzz)
        (
            {"data": {"tftensor": {"dtype": "DT_INT16", "tensorContent": "z\u009e"}}},
            "data.tftensor.tensorContent is not valid base64",
        ),
        ({"customData": {"value": 1}}, 'customData must be an object with an "@type" string'),
        ({"meta": {"routing": {"r": "left"}}}, "meta.routing.r must be an integer"),
        ({"meta": {"routing": {"r": 2**40}}}, "meta.routing.r 1099511627776 is out of range"),
        ({"meta": {"requestPath": {"m": 1}}}, "meta.requestPath values must be strings"),
        ({"meta": {"puid": 5}}, "meta.puid must be a string"),
        ({"meta": {"tags": [1]}}, "meta.tags must be an object"),
        (
            {"meta": {"metrics": [{"key": "k", "type": "SUMMARY"}]}},
            "meta.metrics[0].type must be one of COUNTER",
        ),
        ({"meta": {"metrics": [{"key": "k", "value": "lots"}]}}, "meta.metrics[0].value must be a number"),
        (
            {"meta": {"metrics": [{"key": "k", "tags": {"a": 1}}]}},
            "meta.metrics[0].tags must be an object of strings",
        ),
        ({"status": {"status": "MAYBE"}}, "status.status must be one of SUCCESS, FAILURE"),
        ({"data": {"tftensor": {"floatVal": [1]}}}, "data.tftensor.dtype must name a TensorFlow dtype"),
        (
            {"data": {"tftensor": {"dtype": "DT_BFLOAT16"}}},
            "data.tftensor.dtype 'DT_BFLOAT16' is not a supported",
        ),
        (
            {"data": {"tftensor": {"dtype": "DT_FLOAT", "doubleVal": [1.0]}}},
            "data.tftensor holds DT_FLOAT, whose values belong in floatVal, not doubleVal",
        ),
        (
            {
                "data": {
                    "tftensor": {
                        "dtype": "DT_FLOAT",
                        "tensorShape": {"dim": [{"size": "3"}]},
                        "floatVal": [1, 2],
                    }
                }
            },
            "data.tftensor.floatVal has 2 values but tensorShape [3] needs 3",
        ),
        (
            {
                "data": {
                    "tftensor": {
                        "dtype": "DT_FLOAT",
                        "tensorShape": {"dim": [{"size": "3"}]},
                        "tensorContent": "AAAA",
                    }
                }
            },
            "data.tftensor.tensorContent has 3 bytes but DT_FLOAT of shape [3] needs 12",
        ),
        (
            {"data": {"tftensor": {"dtype": "DT_INT32", "intVal": [1.5]}}},
            "data.tftensor.intVal must be a list of integers",
        ),
        (
            {"data": {"tftensor": {"dtype": "DT_BOOL", "boolVal": ["true"]}}},
            "data.tftensor.boolVal must be a list of booleans",
        ),
        (
            {"data": {"tftensor": {"dtype": "DT_UINT8", "intVal": [300]}}},
            "data.tftensor.intVal does not hold valid DT_UINT8",
        ),
        (
            {"data": {"tftensor": {"dtype": "DT_STRING", "stringVal": ["%%"]}}},
            "data.tftensor.stringVal is not valid base64",
        ),
        (
            {
                "data": {
                    "tftensor": {
                        "dtype": "DT_COMPLEX64",
                        "tensorShape": {"dim": [{"size": "1"}]},
                        "scomplexVal": [1],
                    }
                }
            },
            "data.tftensor.scomplexVal must hold (real, imaginary) pairs",
        ),
    ],
)
def test_bad_messages_name_the_field(body: object, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        jc.decode_message(body)
    assert str(info.value).startswith(message)
    assert info.value.http_status == 400


def test_feedback_errors_carry_the_message_path() -> None:
    with pytest.raises(BadRequest, match=r"^response\.data\.tensor\.shape \[3\] does not match 1 values"):
        jc.decode_feedback({"response": {"data": {"tensor": {"shape": [3], "values": [1]}}}})
    with pytest.raises(BadRequest, match=r"^reward must be a number"):
        jc.decode_feedback({"reward": "lots"})
    with pytest.raises(BadRequest, match=r"^request must be a JSON object"):
        jc.decode_feedback({"request": [1]})


def test_message_list_errors_carry_the_index() -> None:
    with pytest.raises(BadRequest, match=r"^seldonMessages\[1\]\.strData must be a string"):
        jc.decode_message_list({"seldonMessages": [{"strData": "ok"}, {"strData": 1}]})
    with pytest.raises(BadRequest, match=r"^seldonMessages must be a list"):
        jc.decode_message_list({"seldonMessages": {}})


# --- feedback and lists -------------------------------------------------------------------


def test_feedback_decodes_its_parts_and_reward_given_as_string() -> None:
    fb = jc.decode_feedback(
        {
            "request": {"data": {"ndarray": [[1, 2]]}},
            "response": {"meta": {"routing": {"eg-router": 0}}, "data": {"ndarray": [[0.9]]}},
            "reward": "0.9",
            "truth": {"data": {"ndarray": [[1]]}},
        }
    )
    assert fb.reward == 0.9
    assert fb.routing() == {"eg-router": 0}
    assert fb.request is not None and fb.request.payload == [[1, 2]]
    assert fb.truth is not None and fb.truth.payload == [[1]]
    assert jc.decode_feedback({}).request is None


def test_message_list_round_trip() -> None:
    body = {"seldonMessages": [{"data": {"names": [], "ndarray": [[1]]}}, {"strData": "x"}]}
    assert jc.encode_message_list(jc.decode_message_list(body)) == body
    assert jc.decode_message_list({}) == []


# --- encoding ----------------------------------------------------------------------------


def test_encode_always_writes_names_with_data() -> None:
    msg = SeldonMessage(form="ndarray", payload=np.array([[0.1, 0.9]]))
    assert wire_json(jc.encode_message(msg)) == {"data": {"names": [], "ndarray": [[0.1, 0.9]]}}


def test_encode_tensor_and_tftensor_like_seldon() -> None:
    arr = np.array([[1.0, 2.0]], dtype=np.float32)
    tensor = wire_json(jc.encode_message(SeldonMessage(form="tensor", payload=arr, names=["a", "b"])))
    assert tensor == {"data": {"names": ["a", "b"], "tensor": {"shape": [1, 2], "values": [1.0, 2.0]}}}
    tf = wire_json(jc.encode_message(SeldonMessage(form="tftensor", payload=arr)))
    # byte for byte what tf.make_tensor_proto + MessageToJson give
    assert tf["data"]["tftensor"] == {
        "dtype": "DT_FLOAT",
        "tensorShape": {"dim": [{"size": "1"}, {"size": "2"}]},
        "tensorContent": "AACAPwAAAEA=",
    }


def test_encode_tftensor_echoes_the_request_dtype_only_when_safe() -> None:
    probs = np.array([0.25, 0.75])
    as_float = jc.encode_message(SeldonMessage(form="tftensor", payload=probs, tf_dtype="DT_FLOAT"))
    assert as_float["data"]["tftensor"]["dtype"] == "DT_FLOAT"
    as_int = jc.encode_message(SeldonMessage(form="tftensor", payload=probs, tf_dtype="DT_INT32"))
    assert as_int["data"]["tftensor"]["dtype"] == "DT_DOUBLE"  # never truncates 0.25 to 0


def test_encode_string_tftensor_uses_string_val() -> None:
    out = jc.encode_message(SeldonMessage(form="tftensor", payload=np.array(["ab", "c"])))
    assert out["data"]["tftensor"]["stringVal"] == ["YWI=", "Yw=="]
    assert out["data"]["tftensor"]["dtype"] == "DT_STRING"


def test_non_numeric_result_for_tensor_request_goes_back_as_ndarray() -> None:
    out = wire_json(jc.encode_message(SeldonMessage(form="tensor", payload=np.array([["a", "b"]]))))
    assert out == {"data": {"names": [], "ndarray": [["a", "b"]]}}


def test_encode_bin_and_str_and_json_data() -> None:
    assert jc.encode_message(SeldonMessage(form="binData", payload=b"hello")) == {"binData": "aGVsbG8="}
    assert jc.encode_message(SeldonMessage(form="strData", payload="x")) == {"strData": "x"}
    assert jc.encode_message(SeldonMessage(form="jsonData", payload=None)) == {"jsonData": None}


def test_encode_writes_only_schema_fields_and_skips_empty_meta() -> None:
    meta = {
        "puid": "",
        "tags": {},
        "routing": {"r": 1},
        "requestPath": {},
        "metrics": [{"key": "k", "type": "TIMER", "value": 2.0, "extra": "dropped"}],
        "unknown": "dropped",
    }
    out = jc.encode_message(
        SeldonMessage(meta=meta, status=failure_status(-1, "boom", "MICROSERVICE_BAD_DATA"))
    )
    assert out == {
        "status": {"code": -1, "info": "boom", "reason": "MICROSERVICE_BAD_DATA", "status": "FAILURE"},
        "meta": {"routing": {"r": 1}, "metrics": [{"key": "k", "type": "TIMER", "value": 2.0}]},
    }
    assert jc.encode_message(SeldonMessage(meta={"tags": {}})) == {}


def test_encode_feedback() -> None:
    fb = jc.decode_feedback({"response": {"strData": "x"}, "reward": 1})
    assert jc.encode_feedback(fb) == {"response": {"strData": "x"}, "reward": 1.0}
