"""The REST runner's own HTTP client: what a graph with remote nodes relies on for its latency.
Calls reuse pooled keep-alive connections (one per call in flight, none opened per call), every
connection has TCP_NODELAY, a request is one write, a call given up on never leaves its
connection in the pool, and against a real `seldon microservice` the answers are the node's."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import numpy as np
import pytest

from seldon_serving.engine.remote import RestRunner
from seldon_serving.protocol import json_codec
from seldon_serving.protocol.errors import NodeUnavailable
from seldon_serving.protocol.message import NDARRAY, SeldonMessage
from tests.deploy.gateway import USER_MODELS
from tests.helpers import free_port, microservice

X = SeldonMessage(form=NDARRAY, payload=[[1.0, 2.0]])


class CountingServer:
    """Answers every request with `[[n]]` (n = the request's number), counting connections and
    the reads each request arrived in; `delay` s before each answer."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.connections = 0
        self.requests = 0
        self.heads: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> CountingServer:
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
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                length = 0
                for line in head.decode().split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.requests += 1
                number = self.requests
                if self.delay:
                    await asyncio.sleep(self.delay)
                answer = json_codec.dumps({"data": {"ndarray": [[number]]}})
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def run(server: CountingServer, body: Callable[[RestRunner], Awaitable[None]]) -> None:
    async def main() -> None:
        async with server:
            runner = RestRunner("m", "127.0.0.1", server.port, "MODEL", 1 << 20)
            try:
                await body(runner)
            finally:
                await runner.close()

    asyncio.run(main())


def test_sequential_calls_share_one_keep_alive_connection() -> None:
    server = CountingServer()

    async def body(runner: RestRunner) -> None:
        answers = [(await runner.transform_input(X)).payload for _ in range(200)]
        assert answers == [[[n]] for n in range(1, 201)]

    run(server, body)
    assert server.connections == 1
    assert server.requests == 200


def test_concurrent_calls_open_one_connection_each_and_reuse_them_afterwards() -> None:
    server = CountingServer(delay=0.05)

    async def body(runner: RestRunner) -> None:
        for _ in range(3):  # three waves of 8 calls in flight
            await asyncio.gather(*(runner.transform_input(X) for _ in range(8)))

    run(server, body)
    assert server.connections == 8
    assert server.requests == 24


def test_every_connection_has_tcp_nodelay_and_a_request_goes_out_in_one_piece() -> None:
    server = CountingServer()
    options: list[int] = []

    async def body(runner: RestRunner) -> None:
        await runner.transform_input(X)
        for connection in runner._open:
            assert connection.transport is not None
            sock = connection.transport.get_extra_info("socket")
            options.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    run(server, body)
    assert options == [1]
    head = server.heads[0].decode()
    assert head.startswith("POST /predict HTTP/1.1\r\n")
    assert "Seldon-model-name: m\r\n" in head and "Content-Type: application/json\r\n" in head


def test_a_call_given_up_on_leaves_no_connection_behind_and_the_next_call_is_answered() -> None:
    server = CountingServer(delay=0.3)

    async def body(runner: RestRunner) -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await runner.transform_input(X)
        assert not runner._idle  # the late answer must not be read as the next call's
        server.delay = 0.0
        answer = await runner.transform_input(X)
        assert answer.payload == [[2]]  # the second request's own answer

    run(server, body)
    assert server.connections == 2


def test_a_node_that_is_not_there_is_one_sentence_naming_it() -> None:
    port = free_port()

    async def main() -> None:
        runner = RestRunner("absent", "127.0.0.1", port, "MODEL", 1 << 20)
        try:
            await runner.transform_input(X)
        finally:
            await runner.close()

    with pytest.raises(NodeUnavailable) as failed:
        asyncio.run(main())
    assert failed.value.info == (
        f"node 'absent' at 127.0.0.1:{port} is unreachable (connection refused: nothing listens there)"
    )


def test_a_real_microservice_answers_through_the_pooled_client() -> None:
    rows = np.arange(300, dtype=np.float64).reshape(100, 3)  # a large one: decoded on the fast road
    with microservice("Doubler", cwd=USER_MODELS, service_type="TRANSFORMER") as node:

        async def main() -> list[SeldonMessage]:
            runner = RestRunner("doubler", "127.0.0.1", node.http_port, "TRANSFORMER", 1 << 24)
            try:
                small = [await runner.transform_input(X) for _ in range(50)]
                large = await runner.transform_input(SeldonMessage(form=NDARRAY, payload=rows.tolist()))
                metadata = await runner.metadata()
                assert runner.connections_opened == 1
                assert isinstance(metadata, dict)
                return [*small, large]
            finally:
                await runner.close()

        answers = asyncio.run(main())
    assert all(np.array_equal(a.array(), [[2.0, 4.0]]) for a in answers[:-1])
    assert np.array_equal(answers[-1].array(), rows * 2)


def test_an_answer_whose_body_ends_with_the_connection_is_read_whole() -> None:
    answer = json_codec.dumps({"data": {"ndarray": [[7.0]]}})

    async def old_style(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + answer)
        await writer.drain()
        writer.close()

    async def main() -> SeldonMessage:
        server = await asyncio.start_server(old_style, "127.0.0.1", 0)
        runner = RestRunner("m", "127.0.0.1", server.sockets[0].getsockname()[1], "MODEL", 1 << 20)
        try:
            return await runner.transform_input(X)
        finally:
            await runner.close()
            server.close()

    assert asyncio.run(main()).payload == [[7.0]]
