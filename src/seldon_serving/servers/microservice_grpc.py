"""gRPC edge of a component microservice: every Seldon component service
(Generic, Model, Router, Transformer, OutputTransformer, Combiner, and Seldon for
clients that call a component directly) over the same component data plane.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import empty_pb2
from google.protobuf.message import Message

from seldon_serving.protocol import proto_codec
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

    return call


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
    ]
