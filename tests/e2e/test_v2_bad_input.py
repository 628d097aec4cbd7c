"""Malformed V2 requests never crash a server or reach a 5xx: whatever a client sends (random
tensors, shapes, datatypes, parameters, binary sections and headers over REST; random
ModelInferRequests and bytes over gRPC), the answer is a result or a one-sentence 4xx."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seldon_serving.protocol import v2
from seldon_serving.protocol._pb import open_inference_v2_pb2 as v2pb
from tests.helpers import ROOT, Server, microservice

pytestmark = pytest.mark.slow

MODEL = "V2Doubler"
fuzz = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

datatypes = st.sampled_from([*v2.DATATYPES, "FP8", "", "int32"])
small_shapes = st.lists(st.integers(-2, 4), max_size=4) | st.just([2**40, 2**40]) | st.just("3")
scalars = st.none() | st.booleans() | st.integers(-(2**65), 2**65) | st.floats() | st.text(max_size=4)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=12)
parameters = st.dictionaries(
    st.sampled_from(["binary_data_size", "binary_data", "binary_data_output", "puid", "tags", "x"]),
    scalars | st.dictionaries(st.text(max_size=3), scalars, max_size=2),
    max_size=3,
)


@st.composite
def rest_requests(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    inputs = draw(
        st.lists(
            st.fixed_dictionaries(
                {"name": st.text(max_size=3) | st.integers(), "datatype": datatypes, "shape": small_shapes},
                optional={"data": json_values, "parameters": parameters},
            ),
            max_size=3,
        )
    )
    body: dict[str, Any] = {"inputs": inputs}
    if draw(st.booleans()):
        body["outputs"] = draw(st.lists(st.fixed_dictionaries({"name": st.text(max_size=3)}), max_size=2))
    if draw(st.booleans()):
        body["parameters"] = draw(parameters)
    head = json.dumps(body).encode()  # any JSON, integers past 64 bits included
    tail = draw(st.binary(max_size=24))
    headers = {"content-type": "application/json"}
    if tail or draw(st.booleans()):
        header = draw(st.sampled_from([str(len(head)), str(len(head) + 3), "-1", "x", str(len(head) * 9)]))
        headers = {"inference-header-content-length": header, "content-type": "application/octet-stream"}
    return head + tail, headers


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with microservice(MODEL, cwd=ROOT / "tests" / "compat" / "v2_models", log_level="CRITICAL") as running:
        yield running


def test_random_rest_requests_answer_a_result_or_a_one_sentence_4xx(server: Server) -> None:
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=server.url, timeout=10) as client:

        @fuzz
        @given(rest_requests())
        def send(request: tuple[bytes, dict[str, str]]) -> None:
            body, headers = request
            answer = client.post(f"/v2/models/{MODEL}/infer", content=body, headers=headers)
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            assert answer.status_code in (200, 400), answer.text
            if answer.status_code == 400:
                error = answer.json()["error"]
                assert "\n" not in error and "Traceback" not in error

        send()
    assert statuses.get(400, 0) > 50, statuses  # the random requests did reach the codec
    assert client is not None and httpx.get(f"{server.url}/v2/health/live", timeout=5).status_code == 200


@st.composite
def grpc_requests(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 5)) == 0:
        return draw(st.binary(max_size=40))  # not a ModelInferRequest at all
    request = v2pb.ModelInferRequest(model_name=draw(st.sampled_from([MODEL, "other", ""])))
    for _ in range(draw(st.integers(0, 3))):
        entry = request.inputs.add(name=draw(st.text(max_size=3)), datatype=draw(datatypes))
        entry.shape.extend(draw(st.lists(st.integers(-2, 5), max_size=3)))
        field = draw(
            st.sampled_from(["fp32_contents", "int_contents", "bytes_contents", "bool_contents", None])
        )
        if field == "fp32_contents":
            entry.contents.fp32_contents.extend(draw(st.lists(st.floats(width=32), max_size=6)))
        elif field == "int_contents":
            entry.contents.int_contents.extend(draw(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=6)))
        elif field == "bytes_contents":
            entry.contents.bytes_contents.extend(draw(st.lists(st.binary(max_size=3), max_size=6)))
        elif field == "bool_contents":
            entry.contents.bool_contents.extend(draw(st.lists(st.booleans(), max_size=6)))
    for _ in range(draw(st.integers(0, 3))):
        raw = draw(st.binary(max_size=16) | st.just(struct.pack("<I", 2**31)))
        request.raw_input_contents.append(raw)
    return request.SerializeToString()


def test_random_grpc_requests_answer_a_result_or_a_caller_error(server: Server) -> None:
    codes: dict[str, int] = {}
    with grpc.insecure_channel(server.grpc) as channel:
        infer = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=lambda raw: raw,
            response_deserializer=v2pb.ModelInferResponse.FromString,
        )

        @fuzz
        @given(grpc_requests())
        def send(raw: bytes) -> None:
            try:
                infer(raw, timeout=10)
                code = "OK"
            except grpc.RpcError as exc:
                code = exc.code().name  # type: ignore[attr-defined]
                assert "\n" not in (exc.details() or "")  # type: ignore[attr-defined]
            codes[code] = codes.get(code, 0) + 1
            assert code in ("OK", "INVALID_ARGUMENT", "NOT_FOUND"), raw

        send()
    assert codes.get("INVALID_ARGUMENT", 0) > 30, codes
