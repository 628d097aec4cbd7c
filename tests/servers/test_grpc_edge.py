"""The gRPC edge in-process: bytes that are not a valid message are the caller's fault."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.servers.grpc_edge import service, unary


async def echo(request: pb.SeldonMessage, context: grpc.aio.ServicerContext) -> pb.SeldonMessage:
    return request


async def call_raw(payload: bytes) -> bytes:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([service("Model", {"Predict": unary(echo, pb.SeldonMessage)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            return await channel.unary_unary("/seldon.protos.Model/Predict")(payload, timeout=10)
    finally:
        await server.stop(None)


def test_corrupt_protobuf_is_invalid_argument_not_unknown() -> None:
    # grpc's own request_deserializer answered UNKNOWN "Unexpected <class DecodeError>"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        asyncio.run(call_raw(b"\xff\xff\xff\xff"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        info.value.details()
        == "the request is not a valid seldon.protos.SeldonMessage (protobuf wire format)"
    )


def test_valid_bytes_still_parse() -> None:
    request = pb.SeldonMessage(strData="hello")
    assert pb.SeldonMessage.FromString(asyncio.run(call_raw(request.SerializeToString()))).strData == "hello"
