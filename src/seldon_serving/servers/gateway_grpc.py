"""gRPC edge of the gateway: service `seldon.protos.Seldon` for every deployment on one port.

The call's metadata `seldon: <deployment>` (and optional `namespace: <ns>`) picks the
deployment, as Ambassador's header routing did; without it, the only deployment running
answers (SeldonClient gateway="seldon").  An unknown deployment is NOT_FOUND.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format

from seldon_serving.engine.plane import DataPlane
from seldon_serving.protocol import proto_codec
from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol.errors import BadMetadata, Unauthenticated
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
        name, namespace = target(context)
        return answer_proto(await plane.predict(name, namespace, proto_codec.message_from_proto(request)))

    async def send_feedback(request: pb.Feedback, context: Context) -> pb.SeldonMessage:
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

    return [
        service(
            "Seldon",
            {
                "Predict": unary(predict, pb.SeldonMessage),
                "SendFeedback": unary(send_feedback, pb.Feedback),
                "ModelMetadata": unary(model_metadata, pb.SeldonModelMetadataRequest),
                "GraphMetadata": unary(graph_metadata, empty_pb2.Empty),
            },
        )
    ]
