"""Traces across processes: `seldon serve` and two `seldon microservice` nodes (one reached over
gRPC, one over REST) export OTLP, configured by OTEL_* only, to a receiver in the test; a request's
spans form one tree, continuing the traceparent the request came with."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import httpx
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from seldon_serving.protocol._pb import prediction_pb2 as pb
from tests.deploy.gateway import USER_MODELS, deployment, unit, write
from tests.helpers import enter_all, free_port, gateway, microservice

X = [[1.0, 2.0, 3.0, 4.0]]
REST_TRACE, REST_PARENT = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
GRPC_TRACE, GRPC_PARENT = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
V2_TRACE, V2_PARENT = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"


@dataclass
class Span:
    service: str
    name: str
    trace: str
    id: str
    parent: str
    attributes: dict[str, str]


@contextlib.contextmanager
def otlp_receiver() -> Iterator[tuple[str, list[Span]]]:
    """An OTLP/HTTP endpoint on loopback that keeps every span it is sent."""
    spans: list[Span] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = ExportTraceServiceRequest.FromString(body)
            for resource in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource.resource.attributes}
                for scope in resource.scope_spans:
                    for s in scope.spans:
                        spans.append(
                            Span(
                                attributes["service.name"],
                                s.name,
                                s.trace_id.hex(),
                                s.span_id.hex(),
                                s.parent_span_id.hex(),
                                {a.key: a.value.string_value for a in s.attributes},
                            )
                        )
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", spans
    finally:
        server.shutdown()
        server.server_close()


def test_a_request_is_one_trace_across_the_gateway_and_its_remote_rest_and_grpc_nodes(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        endpoint, spans = stack.enter_context(otlp_receiver())
        env = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "50",  # ms: spans reach the receiver at once
        }
        doubler_grpc, linear_http = free_port(), free_port()
        graph = unit(
            "doubler",
            "TRANSFORMER",
            endpoint=("GRPC", doubler_grpc),
            children=[unit("linear", "MODEL", endpoint=("REST", linear_http))],
        )
        manifest = write(tmp_path, "traced.yaml", deployment("traced", graph))
        _, _, gw = enter_all(
            stack,
            [
                microservice(
                    "Doubler",
                    cwd=USER_MODELS,
                    service_type="TRANSFORMER",
                    grpc_port=doubler_grpc,
                    env={**env, "PREDICTIVE_UNIT_ID": "doubler"},
                ),
                microservice(
                    "LinearSoftmax",
                    cwd=USER_MODELS,
                    service_type="MODEL",
                    http_port=linear_http,
                    env={**env, "PREDICTIVE_UNIT_ID": "linear"},
                ),
                gateway(manifest, state_dir=tmp_path / "state", env=env),
            ],
        )
        rest = httpx.post(
            gw.url + "/seldon/traced/api/v0.1/predictions",
            json={"data": {"ndarray": X}, "meta": {"puid": "rest-puid"}},
            headers={"traceparent": f"00-{REST_TRACE}-{REST_PARENT}-01"},
        )
        assert rest.status_code == 200, rest.text
        with grpc.insecure_channel(gw.grpc) as channel:
            predict = channel.unary_unary(
                "/seldon.protos.Seldon/Predict",
                request_serializer=pb.SeldonMessage.SerializeToString,
                response_deserializer=pb.SeldonMessage.FromString,
            )
            request = json_format.ParseDict(
                {"data": {"ndarray": X}, "meta": {"puid": "grpc-puid"}}, pb.SeldonMessage()
            )
            predict(request, metadata=(("traceparent", f"00-{GRPC_TRACE}-{GRPC_PARENT}-01"),))
        fresh = httpx.post(gw.url + "/seldon/traced/api/v0.1/predictions", json={"data": {"ndarray": X}})
        assert fresh.status_code == 200
        v2 = httpx.post(  # the V2 hops: ModelInfer over gRPC, /v2/models/linear/infer over REST
            gw.url + "/seldon/traced/v2/models/traced/infer",
            json={"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": X[0]}]},
            headers={"traceparent": f"00-{V2_TRACE}-{V2_PARENT}-01"},
        )
        assert v2.status_code == 200, v2.text

        # 4 requests x (gateway request + 2 node steps + 2 microservice requests)
        deadline = time.monotonic() + 15
        while len(spans) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(spans) == 20, [(s.service, s.name) for s in spans]

    traces: dict[str, list[Span]] = {}
    for span in spans:
        traces.setdefault(span.trace, []).append(span)
    assert len(traces) == 4  # one trace per request
    v2_tree = {(s.service, s.name): s for s in traces[V2_TRACE]}
    assert v2_tree[("seldon-gateway", "traced predictions")].parent == V2_PARENT
    assert v2_tree[("doubler", "doubler infer")].parent == v2_tree[("seldon-gateway", "doubler predict")].id
    assert v2_tree[("linear", "linear infer")].parent == v2_tree[("seldon-gateway", "linear predict")].id
    for trace_id, parent, puid in (
        (REST_TRACE, REST_PARENT, "rest-puid"),
        (GRPC_TRACE, GRPC_PARENT, "grpc-puid"),
    ):
        tree = {(s.service, s.name): s for s in traces[trace_id]}
        request_span = tree[("seldon-gateway", "traced predictions")]
        assert request_span.parent == parent  # the caller's span, from the traceparent it sent
        assert request_span.attributes["seldon.puid"] == puid
        assert request_span.attributes["seldon.predictor"] == "main"
        doubler = tree[("seldon-gateway", "doubler predict")]
        linear = tree[("seldon-gateway", "linear predict")]
        assert doubler.parent == request_span.id and linear.parent == request_span.id
        assert doubler.attributes["seldon.node"] == "doubler"
        # Each microservice continued the span of the node step that called it.
        assert tree[("doubler", "Doubler transform_input")].parent == doubler.id  # over gRPC metadata
        assert tree[("linear", "LinearSoftmax /predict")].parent == linear.id  # over a REST header
        assert tree[("linear", "LinearSoftmax /predict")].attributes["seldon.puid"] == puid
    (new_trace,) = set(traces) - {REST_TRACE, GRPC_TRACE, V2_TRACE}
    roots = [s for s in traces[new_trace] if not s.parent]
    assert [(s.service, s.name) for s in roots] == [("seldon-gateway", "traced predictions")]


def test_a_worker_that_stops_exports_the_spans_it_still_held(tmp_path: Path) -> None:
    # Spans are exported every minute here, so only the flush at the worker's exit can send them.
    with otlp_receiver() as (endpoint, spans):
        env = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "60000",
        }
        manifest = write(
            tmp_path, "held.yaml", deployment("held", unit("m", "MODEL", implementation="SIMPLE_MODEL"))
        )
        with gateway(manifest, state_dir=tmp_path / "state", env=env, workers=2) as gw:
            answer = httpx.post(gw.url + "/seldon/held/api/v1.0/predictions", json={"data": {"ndarray": X}})
            assert answer.status_code == 200, answer.text
            time.sleep(0.5)
            assert spans == []  # still held by the worker
        deadline = time.monotonic() + 10
        while len(spans) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(s.name for s in spans) == ["held predictions", "m predict"]
