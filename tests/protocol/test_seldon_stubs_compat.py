"""Our protobuf bytes and JSON, read by the real seldon-core 1.18.2 stubs (its own venv).

One subprocess parses every sample: our bytes with `seldon_core.proto.prediction_pb2`
(printed back as MessageToDict), our JSON strictly with json_format.Parse as
SeldonClient does, and tftensors with TensorFlow's own make_ndarray.
"""

from __future__ import annotations

import base64
import json
import subprocess
from typing import Any

import numpy as np
import pytest

from seldon_serving.protocol import json_codec as jc
from seldon_serving.protocol import proto_codec as pc
from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol.message import Feedback, SeldonMessage
from tests.helpers import compat_python
from tests.protocol._helpers import assert_same_feedback, assert_same_message

SELDON_PYTHON = compat_python()

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(not SELDON_PYTHON.exists(), reason=f"no seldon-core venv at {SELDON_PYTHON}"),
]

# Runs inside the seldon-core venv.  Reads [{"type", "proto", "json"}], writes one result each.
_READER = r"""
import base64, json, sys
from google.protobuf import json_format
from seldon_core.proto import prediction_pb2

out = []
for item in json.load(sys.stdin):
    cls = getattr(prediction_pb2, item["type"])
    parsed = cls.FromString(base64.b64decode(item["proto"]))
    result = {"from_proto": json.loads(json_format.MessageToJson(parsed))}
    strict = cls()
    try:
        json_format.Parse(item["json"], strict)  # strict, as SeldonClient parses answers
        result["from_json"] = base64.b64encode(strict.SerializeToString()).decode()
    except json_format.ParseError as exc:
        result["json_error"] = str(exc)
    if item["type"] == "SeldonMessage" and parsed.data.HasField("tftensor"):
        import tensorflow as tf
        array = tf.make_ndarray(parsed.data.tftensor)
        flat = [v.decode("latin-1") if isinstance(v, bytes) else v for v in array.ravel().tolist()]
        result["tf"] = {"dtype": str(array.dtype), "shape": list(array.shape), "values": flat}
    out.append(result)
json.dump(out, sys.stdout)
"""

META = {
    "puid": "p-1",
    "tags": {"version": "v2", "score": 0.5, "nested": {"a": [1.0, "b"]}},
    "routing": {"eg-router": 1, "combiner": -1},
    "requestPath": {"classifier": "seldonio/mock_classifier:1.0"},
    "metrics": [
        {"key": "requests", "type": "COUNTER", "value": 1.0, "tags": {"mode": "a"}},
        {"key": "latency", "type": "TIMER", "value": 20.5},
    ],
}

MESSAGES: dict[str, SeldonMessage] = {
    "tensor": SeldonMessage(form="tensor", payload=np.array([[1.0, 2.5], [3.0, -4.0]]), names=["a", "b"]),
    "ndarray_meta": SeldonMessage(
        form="ndarray", payload=[[0.1, 0.9], [0.4, 0.6]], names=["p0", "p1"], meta=META
    ),
    "ndarray_large": SeldonMessage(form="ndarray", payload=np.arange(300.0).reshape(3, 100)),
    "ndarray_mixed": SeldonMessage(form="ndarray", payload=[["text", 1.0, True, None]]),
    "tftensor": SeldonMessage(
        form="tftensor", payload=np.array([[1.5, 2.0]], dtype=np.float32), tf_dtype="DT_FLOAT"
    ),
    "tftensor_int": SeldonMessage(
        form="tftensor", payload=np.arange(6, dtype=np.int64).reshape(2, 3), tf_dtype="DT_INT64"
    ),
    "tftensor_str": SeldonMessage(
        form="tftensor", payload=np.array([b"ab", b"c"], dtype=object), tf_dtype="DT_STRING"
    ),
    "strData": SeldonMessage(form="strData", payload="hello world", meta={"puid": "x"}),
    "binData": SeldonMessage(form="binData", payload=bytes(range(256))),
    "jsonData": SeldonMessage(form="jsonData", payload={"any": ["json", 1.0, None, {"x": False}]}),
    "failure": SeldonMessage(
        status={"code": -1, "info": "bad", "reason": "MICROSERVICE_BAD_DATA", "status": "FAILURE"}
    ),
}

FEEDBACK = Feedback(
    request=MESSAGES["tensor"],
    response=SeldonMessage(form="ndarray", payload=[[0.9]], meta={"routing": {"eg-router": 0}}),
    reward=0.75,
    truth=SeldonMessage(form="ndarray", payload=[[1.0]]),
)


def _item(kind: str, proto: Any, body: dict[str, Any]) -> dict[str, str]:
    return {
        "type": kind,
        "proto": base64.b64encode(proto.SerializeToString()).decode(),
        "json": jc.dumps(body).decode(),
    }


@pytest.fixture(scope="module")
def seldon_results() -> dict[str, dict[str, Any]]:
    names = list(MESSAGES)
    items = [_item("SeldonMessage", pc.message_to_proto(m), jc.encode_message(m)) for m in MESSAGES.values()]
    items.append(_item("Feedback", pc.feedback_to_proto(FEEDBACK), jc.encode_feedback(FEEDBACK)))
    items.append(
        _item(
            "SeldonMessageList",
            pc.message_list_to_proto(list(MESSAGES.values())),
            jc.encode_message_list(list(MESSAGES.values())),
        )
    )
    names += ["feedback", "list"]
    run = subprocess.run(
        [str(SELDON_PYTHON), "-c", _READER],
        input=json.dumps(items).encode(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-3000:]
    return dict(zip(names, json.loads(run.stdout), strict=True))


@pytest.mark.parametrize("name", list(MESSAGES))
def test_seldon_reads_our_bytes_as_the_same_message(name: str, seldon_results: dict[str, Any]) -> None:
    assert_same_message(jc.decode_message(seldon_results[name]["from_proto"]), MESSAGES[name])


@pytest.mark.parametrize("name", list(MESSAGES))
def test_seldon_client_parses_our_json_strictly(name: str, seldon_results: dict[str, Any]) -> None:
    result = seldon_results[name]
    assert "json_error" not in result, result.get("json_error")
    back = pc.message_from_proto(pb.SeldonMessage.FromString(base64.b64decode(result["from_json"])))
    assert_same_message(back, MESSAGES[name])


def test_seldon_sees_tensor_exactly(seldon_results: dict[str, Any]) -> None:
    assert seldon_results["tensor"]["from_proto"] == {
        "data": {"names": ["a", "b"], "tensor": {"shape": [2, 2], "values": [1.0, 2.5, 3.0, -4.0]}}
    }


def test_seldon_sees_meta_exactly(seldon_results: dict[str, Any]) -> None:
    seen = seldon_results["ndarray_meta"]["from_proto"]["meta"]
    assert {**seen, "metrics": None} == {**META, "metrics": None}
    # proto3 JSON leaves out the default enum value (COUNTER)
    assert seen["metrics"] == [{k: v for k, v in m.items() if v != "COUNTER"} for m in META["metrics"]]


@pytest.mark.parametrize("name", ["tftensor", "tftensor_int", "tftensor_str"])
def test_tensorflow_reads_our_tftensor(name: str, seldon_results: dict[str, Any]) -> None:
    expected = MESSAGES[name].payload
    seen = seldon_results[name]["tf"]
    assert seen["shape"] == list(expected.shape)
    assert seen["dtype"] == str(expected.dtype)
    flat = expected.ravel().tolist()
    assert seen["values"] == [v.decode("latin-1") if isinstance(v, bytes) else v for v in flat]


def test_seldon_reads_our_feedback_and_list(seldon_results: dict[str, Any]) -> None:
    for key in ("feedback", "list"):
        assert "json_error" not in seldon_results[key]
    assert_same_feedback(jc.decode_feedback(seldon_results["feedback"]["from_proto"]), FEEDBACK)
    listed = jc.decode_message_list(seldon_results["list"]["from_proto"])
    for got, original in zip(listed, MESSAGES.values(), strict=True):
        assert_same_message(got, original)
