"""gRPC edge of the gateway: service `seldon.protos.Seldon` for every deployment on one port.

The call's metadata `seldon: <deployment>` (and optional `namespace: <ns>`) picks the
deployment, as Ambassador's header routing did; without it, the only deployment running
answers (SeldonClient gateway="seldon").  An unknown deployment is NOT_FOUND.

Beside it, the Open Inference Protocol's `inference.GRPCInferenceService`: the model name is
the deployment (metadata `namespace` picks the namespace) and ModelInfer goes through its graph.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format

from seldon_serving.engine import tracing
from seldon_serving.engine.plane import DataPlane
from seldon_serving.protocol import proto_codec, v2, v2_edge
from seldon_serving.protocol._pb import open_inference_v2_pb2 as v2pb
from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol.errors import BadMetadata, Unauthenticated
from seldon_serving.servers.gateway_metrics import GRPC_METHOD
from seldon_serving.servers.grpc_edge import Context, answer_proto, service, unary
from seldon_serving.servers.oauth import OAuthService


def call_target(context: Context) -> tuple[str | None, str | None]:
    """(deployment, namespace) named by the call's metadata."""
    name = namespace = None
    for key, value in context.invocation_metadata() or ():
        if key == "seldon":
            name = value if isinstance(value, str) else value.decode()
        elif key == "namespace":
            namespace = value if isinstance(value, str) else value.decode()
    return name or None, namespace or None


def _metadata_value(context: Context, wanted: str) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == wanted:
            return value if isinstance(value, str) else value.decode()
    return None


def gateway_handlers(plane: DataPlane, oauth: OAuthService | None = None) -> list[grpc.GenericRpcHandler]:
    def target(context: Context) -> tuple[str | None, str | None]:
        if tracing.ON:
            tracing.INCOMING.set(tracing.grpc_traceparent(context.invocation_metadata()))
        name, namespace = call_target(context)
        if oauth is None:
            return name, namespace
        # Seldon's apife: the token comes in metadata `oauth_token` and picks the deployment.
        send_it = "send the token in the gRPC metadata key oauth_token"
        if _metadata_value(context, "authorization") is not None:
            send_it += " (not an Authorization header: over gRPC Seldon's API front end reads oauth_token)"
        grant = oauth.check(_metadata_value(context, "oauth_token"), send_it)
        if (name and name != grant.deployment) or (namespace and namespace != grant.namespace):
            raise Unauthenticated(f"this token does not open deployment '{name}'")
        return grant.deployment, grant.namespace

    async def predict(request: pb.SeldonMessage, context: Context) -> pb.SeldonMessage:
        GRPC_METHOD.set("/seldon.protos.Seldon/Predict")  # each call runs in a task of its own
        name, namespace = target(context)
        return answer_proto(await plane.predict(name, namespace, proto_codec.message_from_proto(request)))

    async def send_feedback(request: pb.Feedback, context: Context) -> pb.SeldonMessage:
        GRPC_METHOD.set("/seldon.protos.Seldon/SendFeedback")
        name, namespace = target(context)
        await plane.send_feedback(name, namespace, proto_codec.feedback_from_proto(request))
        return pb.SeldonMessage()

    async def model_metadata(
        request: pb.SeldonModelMetadataRequest, context: Context
    ) -> pb.SeldonModelMetadata:
        name, namespace = target(context)
        document = await plane.model_metadata(name, namespace, request.name)
        return proto_codec.model_metadata_to_proto(document)

    async def graph_metadata(request: Any, context: Context) -> pb.SeldonGraphMetadata:
        name, namespace = target(context)
        document = await plane.graph_metadata(name, namespace)
        try:
            return json_format.ParseDict(document, pb.SeldonGraphMetadata(), ignore_unknown_fields=True)
        except (json_format.ParseError, TypeError, ValueError) as exc:
            raise BadMetadata(f"graph metadata does not fit SeldonGraphMetadata: {exc}") from None

    def v2_target(context: Context, model: str) -> tuple[str, str | None]:
        """(deployment, namespace) of a V2 call naming `model`."""
        if tracing.ON:
            tracing.INCOMING.set(tracing.grpc_traceparent(context.invocation_metadata()))
        namespace = _metadata_value(context, "namespace") or None
        if oauth is not None:
            name, namespace = target(context)
            if name != model:
                raise Unauthenticated(f"this token does not open deployment '{model}'")
        deployment = plane.find(model, namespace)
        return deployment.name, deployment.namespace

    async def server_live(request: object, context: Context) -> v2pb.ServerLiveResponse:
        return v2pb.ServerLiveResponse(live=True)

    async def server_ready(request: object, context: Context) -> v2pb.ServerReadyResponse:
        return v2pb.ServerReadyResponse(ready=await plane.not_ready() is None)

    async def server_metadata(request: object, context: Context) -> v2pb.ServerMetadataResponse:
        document = v2_edge.server_metadata()
        return v2pb.ServerMetadataResponse(
            name=document["name"], version=document["version"], extensions=document["extensions"]
        )

    async def model_ready(request: v2pb.ModelReadyRequest, context: Context) -> v2pb.ModelReadyResponse:
        name, namespace = v2_target(context, request.name)
        ready = plane.not_ready_reason(namespace or "", name) is None and not plane.paused
        return v2pb.ModelReadyResponse(ready=ready)

    async def v2_model_metadata(
        request: v2pb.ModelMetadataRequest, context: Context
    ) -> v2pb.ModelMetadataResponse:
        name, namespace = v2_target(context, request.name)
        document = await plane.graph_metadata(name, namespace)
        found = v2_edge.model_metadata(request.name, {**document, "versions": []})
        return v2_edge.proto_model_metadata(found, v2pb.ModelMetadataResponse())  # type: ignore[no-any-return]

    async def model_infer(request: v2pb.ModelInferRequest, context: Context) -> v2pb.ModelInferResponse:
        GRPC_METHOD.set("/inference.GRPCInferenceService/ModelInfer")
        name, namespace = v2_target(context, request.model_name)
        payload = v2.decode_proto_request(request)
        answer = await plane.predict(name, namespace, v2_edge.request_message(payload))
        response = v2_edge.answer_payload(answer, payload, request.model_name)
        return v2.encode_proto_response(response, v2pb.ModelInferResponse())  # type: ignore[no-any-return]

    v2_service = grpc.method_handlers_generic_handler(
        "inference.GRPCInferenceService",
        {
            "ServerLive": unary(server_live, v2pb.ServerLiveRequest),
            "ServerReady": unary(server_ready, v2pb.ServerReadyRequest),
            "ServerMetadata": unary(server_metadata, v2pb.ServerMetadataRequest),
            "ModelReady": unary(model_ready, v2pb.ModelReadyRequest),
            "ModelMetadata": unary(v2_model_metadata, v2pb.ModelMetadataRequest),
            "ModelInfer": unary(model_infer, v2pb.ModelInferRequest),
        },
    )
    return [
        v2_service,
        service(
            "Seldon",
            {
                "Predict": unary(predict, pb.SeldonMessage),
                "SendFeedback": unary(send_feedback, pb.Feedback),
                "ModelMetadata": unary(model_metadata, pb.SeldonModelMetadataRequest),
                "GraphMetadata": unary(graph_metadata, empty_pb2.Empty),
            },
        ),
    ]
