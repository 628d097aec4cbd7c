"""gRPC edge of a component microservice: every Seldon component service
(Generic, Model, Router, Transformer, OutputTransformer, Combiner, and Seldon for
clients that call a component directly), and the Open Inference Protocol's
`inference.GRPCInferenceService`, over the same component data plane.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import empty_pb2
from google.protobuf.message import Message

from seldon_serving.engine import tracing
from seldon_serving.protocol import proto_codec, v2, v2_edge
from seldon_serving.protocol._pb import open_inference_v2_pb2 as v2pb
from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol.errors import BadRequest
from seldon_serving.protocol.message import SeldonMessage
from seldon_serving.servers.component_plane import ComponentPlane
from seldon_serving.servers.grpc_edge import Call, Context, answer_proto, service, unary


def _request(request: pb.SeldonMessage) -> SeldonMessage:
    # As seldon-core's wrapper: a message without data reaches no user method.
    if request.WhichOneof("data_oneof") is None:
        raise BadRequest("Unknown data in SeldonMessage")
    return proto_codec.message_from_proto(request)


def _call(plane: ComponentPlane, name: str, decode: Callable[[Any], Any], method: Callable[..., Any]) -> Call:
    """One component method over gRPC: the class's protobuf-level hook if it has one (seldon-core
    hands `predict_grpc` and `predict_raw` the protobuf request), else the usual way."""

    async def call(request: Any, context: Context) -> pb.SeldonMessage:
        answer = await plane.grpc_raw(name, request)
        if answer is None:
            answer = await method(decode(request), raw=False)
        return answer_proto(answer)

    if not tracing.ON:
        return call
    operation = f"{plane.model_name} {name}"
    attributes = {"seldon.model": plane.model_name, "seldon.node": plane.adapter.unit_id or ""}

    async def traced(request: Any, context: Context) -> pb.SeldonMessage:
        # A span continuing the caller's trace.
        traceparent = tracing.grpc_traceparent(context.invocation_metadata())
        return await tracing.served(operation, traceparent, attributes, request, call(request, context))

    return traced


def microservice_handlers(plane: ComponentPlane) -> list[grpc.GenericRpcHandler]:
    def handler(name: str, request_type: type[Message], decode: Callable[[Any], Any]) -> Any:
        return unary(_call(plane, name, decode, getattr(plane, name)), request_type)

    predict = handler("predict", pb.SeldonMessage, _request)
    feedback = handler("send_feedback", pb.Feedback, proto_codec.feedback_from_proto)
    transform_input = handler("transform_input", pb.SeldonMessage, _request)
    transform_output = handler("transform_output", pb.SeldonMessage, _request)
    route = handler("route", pb.SeldonMessage, _request)
    aggregate = handler("aggregate", pb.SeldonMessageList, proto_codec.message_list_from_proto)

    async def metadata(request: object, context: Context) -> pb.SeldonModelMetadata:
        return proto_codec.model_metadata_to_proto(plane.metadata())

    metadata_handler = unary(metadata, empty_pb2.Empty)
    model_metadata = unary(metadata, pb.SeldonModelMetadataRequest)
    return [
        service("Model", {"Predict": predict, "SendFeedback": feedback, "Metadata": metadata_handler}),
        service("Router", {"Route": route, "SendFeedback": feedback}),
        service("Transformer", {"TransformInput": transform_input}),
        service("OutputTransformer", {"TransformOutput": transform_output}),
        service("Combiner", {"Aggregate": aggregate}),
        service(
            "Generic",
            {
                "TransformInput": transform_input,
                "TransformOutput": transform_output,
                "Route": route,
                "Aggregate": aggregate,
                "SendFeedback": feedback,
            },
        ),
        service("Seldon", {"Predict": predict, "SendFeedback": feedback, "ModelMetadata": model_metadata}),
        v2_handlers(plane),
    ]


V2_SERVICE = "inference.GRPCInferenceService"


def v2_handlers(plane: ComponentPlane) -> grpc.GenericRpcHandler:
    """`inference.GRPCInferenceService` of one component (model name: `plane.model_name`)."""

    async def server_live(request: object, context: Context) -> v2pb.ServerLiveResponse:
        return v2pb.ServerLiveResponse(live=True)

    async def server_ready(request: object, context: Context) -> v2pb.ServerReadyResponse:
        return v2pb.ServerReadyResponse(ready=True)

    async def server_metadata(request: object, context: Context) -> v2pb.ServerMetadataResponse:
        document = v2_edge.server_metadata()
        return v2pb.ServerMetadataResponse(
            name=document["name"], version=document["version"], extensions=document["extensions"]
        )

    async def model_ready(request: v2pb.ModelReadyRequest, context: Context) -> v2pb.ModelReadyResponse:
        v2_edge.check_model(request.name, plane.model_name, plane.model_names)
        return v2pb.ModelReadyResponse(ready=True)

    async def model_metadata(
        request: v2pb.ModelMetadataRequest, context: Context
    ) -> v2pb.ModelMetadataResponse:
        v2_edge.check_model(request.name, plane.model_name, plane.model_names)
        document = v2_edge.model_metadata(request.name, plane.metadata())
        return v2_edge.proto_model_metadata(document, v2pb.ModelMetadataResponse())  # type: ignore[no-any-return]

    async def model_infer(request: v2pb.ModelInferRequest, context: Context) -> v2pb.ModelInferResponse:
        v2_edge.check_model(request.model_name, plane.model_name, plane.model_names)
        payload = v2.decode_proto_request(request)
        work = plane.v2_infer(v2_edge.request_message(payload))
        if tracing.ON:  # a span continuing the caller's trace
            traceparent = tracing.grpc_traceparent(context.invocation_metadata())
            attributes = {"seldon.model": plane.model_name, "seldon.node": plane.adapter.unit_id or ""}
            answer = await tracing.served(f"{request.model_name} infer", traceparent, attributes, None, work)
        else:
            answer = await work
        response = v2_edge.answer_payload(answer, payload, request.model_name)
        return v2.encode_proto_response(response, v2pb.ModelInferResponse())  # type: ignore[no-any-return]

    return grpc.method_handlers_generic_handler(
        V2_SERVICE,
        {
            "ServerLive": unary(server_live, v2pb.ServerLiveRequest),
            "ServerReady": unary(server_ready, v2pb.ServerReadyRequest),
            "ServerMetadata": unary(server_metadata, v2pb.ServerMetadataRequest),
            "ModelReady": unary(model_ready, v2pb.ModelReadyRequest),
            "ModelMetadata": unary(model_metadata, v2pb.ModelMetadataRequest),
            "ModelInfer": unary(model_infer, v2pb.ModelInferRequest),
        },
    )
