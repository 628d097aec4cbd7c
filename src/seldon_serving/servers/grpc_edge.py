"""gRPC plumbing shared by the microservice and the gateway edges: turning async
functions over in-memory messages into grpc.aio method handlers, with the one
error table mapped to gRPC status codes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError, Message

from seldon_serving.protocol import proto_codec
from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol.errors import BadRequest, SeldonError, UserCodeError, answer_failure
from seldon_serving.protocol.message import SeldonMessage
from seldon_serving.servers.logs import log_failure

log = logging.getLogger("seldon_serving.grpc")

if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[Any, Any]
else:  # not subscriptable at run time
    Context = grpc.aio.ServicerContext

Call = Callable[[Any, Context], Awaitable[Any]]


async def abort(context: Context, error: SeldonError) -> None:
    await context.abort(grpc.StatusCode[error.grpc_code], error.info)


def guarded(fn: Call) -> Call:
    """Map every failure to a gRPC status with a one-sentence detail, never a trace."""

    async def call(request: Any, context: Context) -> Any:
        try:
            return await fn(request, context)
        except SeldonError as error:
            log_failure(log, "gRPC call failed", error)
            await abort(context, error)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            log.exception("unexpected error in gRPC call")
            await abort(context, UserCodeError(f"{type(exc).__name__}: {exc}"))

    return call


def answer_proto(answer: SeldonMessage) -> pb.SeldonMessage:
    """The protobuf answer; an answer whose status says it failed is that error instead
    (the same rule the REST edges answer with as an HTTP status)."""
    failure = answer_failure(answer.status)
    if failure is not None:
        raise failure
    return proto_codec.message_to_proto(answer)


def unary(call: Call, request_type: type[Message]) -> grpc.RpcMethodHandler[Any, Any]:
    parse = request_type.FromString
    name = request_type.DESCRIPTOR.full_name

    # Parsed here rather than by grpc's request_deserializer: bytes that are not a valid
    # message are the caller's fault (INVALID_ARGUMENT), where grpc would answer UNKNOWN.
    async def parsed(raw: bytes, context: Context) -> Any:
        try:
            request = parse(raw)
        except DecodeError:
            raise BadRequest(f"the request is not a valid {name} (protobuf wire format)") from None
        return await call(request, context)

    return grpc.unary_unary_rpc_method_handler(
        guarded(parsed),
        response_serializer=lambda message: message.SerializeToString(),
    )


def service(name: str, methods: dict[str, grpc.RpcMethodHandler[Any, Any]]) -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(f"seldon.protos.{name}", methods)


def server_options(max_message: int) -> list[tuple[str, Any]]:
    return [
        ("grpc.so_reuseport", 1),
        ("grpc.max_send_message_length", max_message),
        ("grpc.max_receive_message_length", max_message),
    ]
