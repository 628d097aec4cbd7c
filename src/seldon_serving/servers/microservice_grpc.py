"""gRPC edge of a component microservice: every Seldon component service
(Generic, Model, Router, Transformer, OutputTransformer, Combiner, and Seldon for
clients that call a component directly) over the same component data plane.
"""

from __future__ import annotations

import grpc
from google.protobuf import empty_pb2

from seldon_serving.protocol import proto_codec
from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.servers.component_plane import ComponentPlane
from seldon_serving.servers.grpc_edge import Context, feedback_call, list_call, message_call, service, unary


def microservice_handlers(plane: ComponentPlane) -> list[grpc.GenericRpcHandler]:
    predict = unary(message_call(plane.predict), pb.SeldonMessage)
    feedback = unary(feedback_call(plane.send_feedback), pb.Feedback)
    transform_input = unary(message_call(plane.transform_input), pb.SeldonMessage)
    transform_output = unary(message_call(plane.transform_output), pb.SeldonMessage)
    route = unary(message_call(plane.route), pb.SeldonMessage)
    aggregate = unary(list_call(plane.aggregate), pb.SeldonMessageList)

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
