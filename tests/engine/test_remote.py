"""Remote runners when the component misbehaves.  REST, against a raw HTTP server that
drops connections on purpose: a pooled keep-alive connection closed under us is retried
once on a fresh one, nothing else is.  gRPC: a component back after an outage is used
again within about a second."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from seldon_serving.engine.remote import GrpcRunner, RestRunner
from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol.errors import NodeUnavailable
from seldon_serving.protocol.message import NDARRAY, SeldonMessage
from tests.helpers import free_port

X = SeldonMessage(form=NDARRAY, payload=[[1.0, 2.0]])
ANSWER = json.dumps({"data": {"ndarray": [[3.0]]}}).encode()

# (index of the connection, index of the request on it) -> answer it?
Policy = Callable[[int, int], bool]


class RawServer:
    """Counts requests per connection; answers or drops them as `policy` says."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.requests: list[tuple[int, int]] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = self.connections
        self.connections += 1
        try:
            for index in range(100):
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode().split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.requests.append((connection, index))
                if not self.policy(connection, index):
                    return  # drop the connection without a byte of answer
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(ANSWER)}\r\n\r\n".encode()
                    + ANSWER
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def run(policy: Policy, body: Callable[[RestRunner, RawServer], Awaitable[None]]) -> RawServer:
    async def main() -> RawServer:
        async with RawServer(policy) as server:
            runner = RestRunner("m", "127.0.0.1", server.port, "MODEL", 1 << 20)
            try:
                await body(runner, server)
            finally:
                await runner.close()
            return server

    return asyncio.run(main())


def test_a_stale_pooled_connection_is_retried_once_on_a_fresh_one() -> None:
    # The first connection answers once, then is closed under the client when reused.
    async def body(runner: RestRunner, server: RawServer) -> None:
        for _ in range(3):
            answer = await runner.transform_input(X)
            assert answer.payload == [[3.0]]

    server = run(lambda connection, index: not (connection == 0 and index == 1), body)
    assert server.requests == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_a_fresh_connection_dropped_is_not_retried() -> None:
    # Every connection is dropped at its first request: the component may have died of it.
    async def body(runner: RestRunner, server: RawServer) -> None:
        with pytest.raises(NodeUnavailable, match="node 'm'"):
            await runner.transform_input(X)

    server = run(lambda connection, index: False, body)
    assert server.requests == [(0, 0)]


def test_only_one_retry_when_the_fresh_connection_fails_too() -> None:
    async def body(runner: RestRunner, server: RawServer) -> None:
        await runner.transform_input(X)
        with pytest.raises(NodeUnavailable):
            await runner.transform_input(X)

    server = run(lambda connection, index: connection == 0 and index == 0, body)
    assert server.requests == [(0, 0), (0, 1), (1, 0)]


def test_a_timeout_is_not_retried() -> None:
    async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        await asyncio.sleep(5)
        writer.close()

    seen: list[bytes] = []

    async def main() -> None:
        server = await asyncio.start_server(never, "127.0.0.1", 0)
        runner = RestRunner("m", "127.0.0.1", server.sockets[0].getsockname()[1], "MODEL", 1 << 20)
        try:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await runner.transform_input(X)
            await asyncio.sleep(0.2)
        finally:
            await runner.close()
            server.close()

    asyncio.run(main())
    assert len(seen) == 1


@pytest.mark.slow
def test_the_grpc_runner_uses_a_component_again_soon_after_a_long_outage() -> None:
    """gRPC's default reconnect backoff grows to minutes; ours is capped at a second."""

    async def predict(request: pb.SeldonMessage, context: Any) -> pb.SeldonMessage:
        return request

    handler = grpc.method_handlers_generic_handler(
        "seldon.protos.Model",
        {
            "Predict": grpc.unary_unary_rpc_method_handler(
                predict,
                request_deserializer=pb.SeldonMessage.FromString,
                response_serializer=pb.SeldonMessage.SerializeToString,
            )
        },
    )

    async def start(port: int) -> grpc.aio.Server:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((handler,))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        return server

    async def main() -> float:
        port = free_port()
        server = await start(port)
        runner = GrpcRunner("m", "127.0.0.1", port, "MODEL", 1 << 20)
        try:
            assert (await runner.transform_input(X)).payload == [[1.0, 2.0]]
            await server.stop(None)
            # Down for 6 s, asked all along: by then gRPC's default backoff waits 4-6 s more.
            down_until = time.monotonic() + 6.0
            while time.monotonic() < down_until:
                with pytest.raises(NodeUnavailable, match="node 'm'"):
                    await runner.transform_input(X)
                await asyncio.sleep(0.05)
            server = await start(port)
            back = time.monotonic()
            while time.monotonic() - back < 10:
                with contextlib.suppress(NodeUnavailable):
                    await runner.transform_input(X)
                    return time.monotonic() - back
                await asyncio.sleep(0.02)
            return float("inf")
        finally:
            await runner.close()
            await server.stop(None)

    assert asyncio.run(main()) < 1.6
