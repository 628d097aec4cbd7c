"""The V2 codec: every datatype and shape survives every wire form (JSON, Triton's binary
extension, protobuf typed contents and raw contents), and malformed input is one sentence."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from seldon_serving.protocol import v2
from seldon_serving.protocol._pb import open_inference_v2_pb2 as v2pb
from seldon_serving.protocol.errors import BadRequest

quick = settings(max_examples=60, deadline=None)
DATATYPES = list(v2.DATATYPES)
shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=4)


@st.composite
def tensors(draw: st.DrawFn, *, text_only: bool, finite: bool) -> v2.Tensor:
    """A tensor of any datatype and shape (`text_only`: BYTES that JSON can carry; `finite`: no
    NaN or infinity, which JSON cannot carry)."""
    datatype = draw(st.sampled_from(DATATYPES))
    shape = draw(shapes)
    if datatype == "BYTES":
        element = st.text(max_size=5).map(str.encode) if text_only else st.binary(max_size=5)
        flat = draw(st.lists(element, min_size=math.prod(shape), max_size=math.prod(shape)))
        data = np.empty(len(flat), dtype=object)
        data[:] = flat
        data = data.reshape(shape)
    else:
        dtype = v2.DATATYPES[datatype]
        elements = None
        if dtype.kind == "f":
            elements = hnp.from_dtype(dtype, allow_nan=not finite, allow_infinity=not finite)
        data = draw(hnp.arrays(dtype, shape, elements=elements))
    name = draw(st.text(alphabet="abcxyz_-0123456789", min_size=1, max_size=8))
    return v2.Tensor(name, datatype, data)


def payloads(*, text_only: bool, finite: bool) -> st.SearchStrategy[v2.InferPayload]:
    return st.lists(
        tensors(text_only=text_only, finite=finite), min_size=1, max_size=3, unique_by=lambda t: t.name
    ).map(lambda ts: v2.InferPayload(ts, id="req-1", parameters={"custom": "yes", "n": 3}))


def assert_same(got: v2.InferPayload, want: v2.InferPayload) -> None:
    assert [t.name for t in got.tensors] == [t.name for t in want.tensors]
    for a, b in zip(got.tensors, want.tensors, strict=True):
        assert a.datatype == b.datatype
        assert a.data.shape == b.data.shape
        if a.datatype == "BYTES":
            assert a.data.dtype == object
            assert list(a.data.ravel()) == list(b.data.ravel())
        else:
            assert a.data.dtype == v2.DATATYPES[a.datatype]
            np.testing.assert_array_equal(a.data, b.data)  # NaN equals NaN here
    assert got.id == want.id
    assert got.parameters == want.parameters


@quick
@given(payloads(text_only=True, finite=True))
def test_json_request_round_trip(payload: v2.InferPayload) -> None:
    body, header = v2.encode_rest_body(payload, response=False)
    assert header is None
    assert_same(v2.decode_rest_body(body, None), payload)


@quick
@given(payloads(text_only=True, finite=True))
def test_json_response_round_trip_with_nested_data(payload: v2.InferPayload) -> None:
    obj, _ = v2.encode_json(payload)
    # The protocol allows nested row-major data as well as flat: both read the same.
    for entry, tensor in zip(obj["outputs"], payload.tensors, strict=True):
        entry["data"] = v2.loads(
            v2.dumps(tensor.data.tolist() if tensor.datatype != "BYTES" else entry["data"])
        )
    assert_same(v2.decode_json(v2.loads(v2.dumps(obj)), response=True), payload)


@quick
@given(payloads(text_only=False, finite=False))
def test_binary_extension_round_trip(payload: v2.InferPayload) -> None:
    payload.binary = True
    body, header = v2.encode_rest_body(payload, response=False)
    assert header is not None
    head = v2.loads(body[:header])
    assert all("data" not in entry and "binary_data_size" in entry["parameters"] for entry in head["inputs"])
    decoded = v2.decode_rest_body(body, str(header).encode())
    assert_same(decoded, payload)
    # binary outputs on request (Triton's binary_data_output), read back by the same rule
    request = v2.InferPayload([], parameters={"binary_data_output": True})
    answer_body, answer_header = v2.encode_rest_body(payload, request)
    assert_same(v2.decode_rest_body(answer_body, str(answer_header), response=True), payload)


@quick
@given(payloads(text_only=False, finite=False), st.booleans())
def test_proto_round_trip_typed_and_raw(payload: v2.InferPayload, raw: bool) -> None:
    payload.binary = raw
    message = v2.encode_proto_request(payload, v2pb.ModelInferRequest(), "m")
    wire = v2pb.ModelInferRequest.FromString(message.SerializeToString())
    # FP16 has no typed field: a request holding one travels raw whole
    assert bool(wire.raw_input_contents) == (raw or any(t.datatype == "FP16" for t in payload.tensors))
    assert_same(v2.decode_proto_request(wire), payload)
    response = v2.encode_proto_response(payload, v2pb.ModelInferResponse())
    assert_same(
        v2.decode_proto_response(v2pb.ModelInferResponse.FromString(response.SerializeToString())), payload
    )


@quick
@given(st.dictionaries(st.sampled_from(["puid", "tags", "routing", "requestPath"]), st.just(None)))
def test_meta_travels_in_parameters_over_json_and_proto(keys: dict[str, None]) -> None:
    meta = {"puid": "abc", "tags": {"a": 1, "b": "x"}, "routing": {"ab": 1}, "requestPath": {"m": "img:1"}}
    meta = {k: meta[k] for k in keys}
    parameters = v2.meta_to_parameters(meta)
    assert v2.meta_from_parameters(parameters) == meta
    payload = v2.InferPayload([v2.Tensor("x", "INT32", np.arange(2, dtype=np.int32))], parameters=parameters)
    proto = v2.encode_proto_response(payload, v2pb.ModelInferResponse())
    back = v2.decode_proto_response(v2pb.ModelInferResponse.FromString(proto.SerializeToString()))
    assert v2.meta_from_parameters(back.parameters) == meta


def test_user_values_become_outputs_of_the_right_datatype() -> None:
    assert v2.tensor_from_value("a", np.ones((2, 3), np.float32)).datatype == "FP32"
    assert v2.tensor_from_value("a", [[1, 2]]).datatype == "INT64"
    assert v2.tensor_from_value("a", [True, False]).datatype == "BOOL"
    words = v2.tensor_from_value("a", np.array(["hé", "b"]))
    assert words.datatype == "BYTES" and list(words.data) == ["hé".encode(), b"b"]
    assert v2.tensor_from_value("a", "text").shape == [1]
    assert v2.tensor_from_value("a", 3.5).shape == [1]


def test_outputs_selection_and_the_one_unnamed_output() -> None:
    answer = v2.InferPayload([v2.Tensor(n, "INT8", np.zeros(1, np.int8)) for n in ("a", "b", "c")])
    picked = v2.select_outputs(
        answer, v2.InferPayload([], outputs=[v2.RequestedOutput("c"), v2.RequestedOutput("a")])
    )
    assert [t.name for t in picked.tensors] == ["c", "a"]
    with pytest.raises(BadRequest, match="no output named 'z' \\(its outputs: a, b, c\\)"):
        v2.select_outputs(answer, v2.InferPayload([], outputs=[v2.RequestedOutput("z")]))
    single = v2.InferPayload([v2.Tensor("output-0", "INT8", np.zeros(1, np.int8))])
    renamed = v2.select_outputs(single, v2.InferPayload([], outputs=[v2.RequestedOutput("OUTPUT0")]))
    assert [t.name for t in renamed.tensors] == ["OUTPUT0"]


def _one_sentence(message: str) -> None:
    assert "\n" not in message and "Traceback" not in message and message.count(". ") == 0


@pytest.mark.parametrize(
    ("body", "header", "expected"),
    [
        (b'{"inputs":[{"name":"x","datatype":"FP8","shape":[1],"data":[1]}]}', None, "datatype 'FP8'"),
        (
            b'{"inputs":[{"name":"x","datatype":"FP32","shape":[2,2],"data":[1,2,3]}]}',
            None,
            "has 3 elements but its shape [2, 2] needs 4",
        ),
        (
            b'{"inputs":[{"name":"x","datatype":"INT8","shape":[1],"data":[300]}]}',
            None,
            "values out of the range of INT8",
        ),
        (
            b'{"inputs":[{"name":"x","datatype":"BOOL","shape":[1],"data":[2]}]}',
            None,
            "values other than true and false",
        ),
        (b'{"inputs":[{"name":"x","datatype":"FP32","shape":[-1],"data":[]}]}', None, "negative size"),
        (
            b'{"inputs":[{"name":"x","datatype":"FP32","shape":"2","data":[1,2]}]}',
            None,
            "a shape is a list of integers",
        ),
        (
            b'{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[[1],[2,3]]}]}',
            None,
            "not a rectangular array",
        ),
        (
            b'{"inputs":[{"name":"x","datatype":"BYTES","shape":[1],"data":[5]}]}',
            None,
            "BYTES elements are strings",
        ),
        (b'{"inputs":[{"name":"x","datatype":"FP32","shape":[1]}]}', None, "has no 'data'"),
        (b'{"inputs":[{"datatype":"FP32","shape":[1],"data":[1]}]}', None, "has no 'name' string"),
        (b'{"inputs":{}}', None, "has no 'inputs' list"),
        (b"[1]", None, "must be a JSON object"),
        (b'{"inputs":[', None, "Invalid JSON"),
        (b'{"inputs":[]}', b"abc", "Inference-Header-Content-Length 'abc' is not a byte count"),
        (b'{"inputs":[]}', b"999", "does not fit a body of 13 bytes"),
        (
            (
                b'{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}}]}',
                b"\x00\x00",
            ),
            "computed",
            "binary_data_size 8 but only 2 bytes",
        ),
        (
            (
                b'{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4}}]}',
                b"\x00\x00\x00\x00\x01",
            ),
            "computed",
            "1 bytes of binary data follow the JSON header that no tensor's binary_data_size claims",
        ),
        (
            (
                b'{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":2}}]}',
                b"\x00\x00",
            ),
            "computed",
            "2 bytes of FP32 data but its shape [1] needs 4",
        ),
        (
            (
                b'{"inputs":[{"name":"x","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":6}}]}',
                b"\x09\x00\x00\x00ab",
            ),
            "computed",
            "ends inside an element of 9 bytes",
        ),
        (
            b'{"inputs":[{"name":"x","datatype":"FP32","shape":[65536,65536,65536],"data":[]}]}',
            None,
            "more than",
        ),
    ],
)
def test_malformed_requests_are_one_sentence_naming_the_fault(
    body: bytes | tuple[bytes, bytes], header: bytes | str | None, expected: str
) -> None:
    if isinstance(body, tuple):  # JSON, then binary data: the header is the JSON's length
        header = str(len(body[0]))
        body = body[0] + body[1]
    with pytest.raises(BadRequest) as caught:
        v2.decode_rest_body(body, header)
    assert expected in caught.value.info
    _one_sentence(caught.value.info)
    assert caught.value.http_status == 400 and caught.value.grpc_code == "INVALID_ARGUMENT"


def test_malformed_proto_requests() -> None:
    request = v2pb.ModelInferRequest(model_name="m")
    entry = request.inputs.add(name="x", datatype="FP16", shape=[2])
    with pytest.raises(BadRequest, match="input 'x' is FP16, which travels only in raw contents"):
        v2.decode_proto_request(request)
    entry.datatype = "INT32"
    entry.contents.int_contents.extend([1, 2, 3])
    with pytest.raises(BadRequest, match="has 3 elements but its shape \\[2\\] needs 2"):
        v2.decode_proto_request(request)
    request.raw_input_contents.append(struct.pack("<i", 1))
    request.raw_input_contents.append(b"")
    with pytest.raises(BadRequest, match="1 inputs but 2 raw contents entries"):
        v2.decode_proto_request(request)
