"""Connection limits (issue 13): a slow-loris client cannot hold a worker's sockets, idle
connections are closed, and past --max-connections a client is told 503 (REST) or refused (gRPC)
while the connections already open keep working.  Real servers, real sockets, short limits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol._pb import prediction_pb2_grpc as pb_grpc
from tests.helpers import Server, free_port, microservice, running, seldon_bin, wait_until
from tests.tls_certs import make_certs

pytestmark = pytest.mark.slow

HEADER_TIMEOUT = 2.0
IDLE_TIMEOUT = 4  # longer than the header timeout: an idle kept-alive connection gets this one
CAP = 5
LORIS = 1000  # slow-loris connections on the REST port
GRPC_SILENT = 300  # raw sockets on the gRPC port that never finish the HTTP/2 preface
# Deadlines are checked about every header_timeout / 4 s; the rest is room for a busy machine.
LATE = 2.0
MODEL = "class Echo:\n    def predict(self, X, features_names=None):\n        return X\n"
X = {"data": {"ndarray": [[1.0, 2.0, 3.0]]}}
_BODY = json.dumps(X).encode()
PREDICT = (
    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    + b"Content-Length: %d\r\n\r\n%s" % (len(_BODY), _BODY)
)


def raise_fd_limit(needed: int) -> None:
    """The test and the servers it starts (they inherit it) hold over a thousand sockets each."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise AssertionError(f"these tests need `ulimit -n` of {needed}; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("limits")
    (directory / "Echo.py").write_text(MODEL)
    raise_fd_limit(4096)
    return directory


@pytest.fixture(scope="module")
def limited(model_dir: Path) -> Iterator[Server]:
    """Short timeouts, a cap above the attack (one worker: its pid is the server's)."""
    args = ["--header-timeout", str(HEADER_TIMEOUT), "--idle-timeout", str(IDLE_TIMEOUT)]
    args += ["--max-connections", str(LORIS + 200)]
    with microservice("Echo", *args, cwd=model_dir, service_type="MODEL") as server:
        yield server


@pytest.fixture(scope="module")
def capped(model_dir: Path) -> Iterator[Server]:
    args = ["--max-connections", str(CAP), "--header-timeout", "20"]
    with microservice("Echo", *args, cwd=model_dir, service_type="MODEL") as server:
        yield server


def grpc_predict(address: str, channel: grpc.Channel | None = None) -> pb.SeldonMessage:
    request = pb.SeldonMessage()
    request.data.tensor.shape.extend([1, 3])
    request.data.tensor.values.extend([1.0, 2.0, 3.0])
    with contextlib.ExitStack() as stack:
        if channel is None:
            channel = stack.enter_context(own_channel(address))
        answer: pb.SeldonMessage = pb_grpc.ModelStub(channel).Predict(request, timeout=5)
        return answer


def own_channel(address: str) -> grpc.Channel:
    """A channel with a connection of its own (channels to one address share one by default)."""
    return grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])


async def held_open(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, trickle: bytes | None, opened: float
) -> float:
    """Seconds from `opened` until the server closes this connection (inf if it is still open
    10 s later); with `trickle`, sends it once a second meanwhile, as a slow-loris client does."""
    try:
        while time.monotonic() - opened < 10:
            try:
                data = await asyncio.wait_for(reader.read(4096), 1.0)
            except TimeoutError:
                if trickle is not None:
                    writer.write(trickle)
                continue
            if not data:
                return time.monotonic() - opened
        return math.inf
    except ConnectionError:
        return time.monotonic() - opened
    finally:
        writer.close()


async def attack(port: int, count: int, first: bytes, trickle: bytes | None) -> list[float]:
    async def one() -> float:
        opened = time.monotonic()  # before the connect: the server's clock starts at its accept
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if first:
            writer.write(first)
        return await held_open(reader, writer, trickle, opened)

    return list(await asyncio.gather(*(one() for _ in range(count))))


def run_attack(
    port: int, count: int, first: bytes, trickle: bytes | None, pid: int, probe: Callable[[], None]
) -> tuple[list[float], int, float]:
    """Run the attack; one second in, count the server's open fds and time `probe()` (a normal
    request, in a thread).  Returns how long each attacking connection stayed open, the fds at
    that moment, and the probe's seconds."""

    async def main() -> tuple[list[float], int, float]:
        task = asyncio.create_task(attack(port, count, first, trickle))
        await asyncio.sleep(1.0)
        fds = open_fds(pid)
        started = time.monotonic()
        await asyncio.to_thread(probe)
        took = time.monotonic() - started
        return await task, fds, took

    return asyncio.run(main())


# --- REST --------------------------------------------------------------------------------------


def test_slow_loris_connections_are_closed_and_normal_requests_still_answer(limited: Server) -> None:
    pid = limited.process.pid
    baseline = open_fds(pid)

    def normal_request() -> None:
        r = httpx.post(f"{limited.url}/predict", json=X, timeout=5)
        assert r.status_code == 200, r.text
        assert r.json()["data"]["ndarray"] == [[1.0, 2.0, 3.0]]

    first = b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    held, fds_during, took = run_attack(
        limited.http_port, LORIS, first, b"X-Slow: 1\r\n", pid, normal_request
    )
    print(
        f"REST: {LORIS} slow-loris connections held {min(held):.2f}-{max(held):.2f} s; server fds"
        f" {baseline} -> {fds_during}; a normal request took {took * 1000:.0f} ms during the attack"
    )
    assert fds_during >= baseline + LORIS * 0.9, (baseline, fds_during)  # the attack was really on
    assert took < 1.0, f"a normal request took {took:.2f} s during the attack"
    # Every slow client was cut at the header timeout, although it kept sending a line a second.
    assert min(held) >= HEADER_TIMEOUT - 0.1, min(held)
    assert max(held) <= HEADER_TIMEOUT + LATE, sorted(held)[-5:]
    wait_until(lambda: open_fds(pid) <= baseline + 5, f"the server's fds back to {baseline}", timeout=5)


def test_a_connection_that_sends_nothing_is_closed_at_the_header_timeout(limited: Server) -> None:
    async def main() -> list[float]:
        return await attack(limited.http_port, 20, b"", None)

    held = asyncio.run(main())
    assert all(HEADER_TIMEOUT - 0.1 <= seconds <= HEADER_TIMEOUT + LATE for seconds in held), held


def test_an_idle_connection_is_closed_at_the_idle_timeout_rest_and_grpc(limited: Server) -> None:
    async def rest() -> tuple[bytes, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", limited.http_port)
        writer.write(b"GET /health/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(4096), 5)
        # Idle between requests is the idle timeout's business, not the header timeout's.
        return answer, await held_open(reader, writer, None, time.monotonic())

    def grpc_idle() -> float:
        """Seconds from the last call until the server sends the channel away (it goes IDLE)."""
        went_idle = threading.Event()
        with own_channel(limited.grpc) as channel:
            grpc_predict(limited.grpc, channel)
            last_call = time.monotonic()
            channel.subscribe(lambda state: state == grpc.ChannelConnectivity.IDLE and went_idle.set())
            went_idle.wait(3 * IDLE_TIMEOUT)
            idle = time.monotonic() - last_call
            grpc_predict(limited.grpc, channel)  # and it connects again on its next call
        return idle

    async def both() -> tuple[tuple[bytes, float], float]:
        return await asyncio.gather(rest(), asyncio.to_thread(grpc_idle))

    (answer, idle), grpc_seconds = asyncio.run(both())
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert IDLE_TIMEOUT - 0.1 <= idle <= IDLE_TIMEOUT + LATE, idle
    # grpc core checks idleness in steps: a connection goes within twice the timeout.
    assert IDLE_TIMEOUT - 0.1 <= grpc_seconds <= 2 * IDLE_TIMEOUT + LATE, grpc_seconds


def test_a_request_body_that_stalls_is_closed_at_the_idle_timeout(limited: Server) -> None:
    async def main() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", limited.http_port)
        writer.write(PREDICT[: PREDICT.index(b"\r\n\r\n") + 5])  # the headers and one byte of body
        return await held_open(reader, writer, None, time.monotonic())

    stalled = asyncio.run(main())
    # Its headers were in: not the header timeout's business, but it does not stay forever.
    assert IDLE_TIMEOUT - 0.1 <= stalled <= IDLE_TIMEOUT + LATE, stalled


def test_past_the_cap_a_client_gets_503_with_a_failure_body_and_open_connections_work(capped: Server) -> None:
    held = [socket.create_connection(("127.0.0.1", capped.http_port), timeout=5) for _ in range(CAP)]
    try:
        time.sleep(0.3)  # accepted by the server, so they count
        r = httpx.post(f"{capped.url}/predict", json=X, timeout=5)
        assert r.status_code == 503, r.text
        status = r.json()["status"]
        assert status["status"] == "FAILURE" and status["code"] == -1, status
        assert "--max-connections" in status["info"] and str(CAP) in status["info"], status
        assert r.headers["connection"] == "close"
        # The connections inside the cap are served.
        for sock in held:
            sock.sendall(PREDICT)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200"), "a connection inside the cap was refused"
    finally:
        for sock in held:
            sock.close()
    # Once they are gone, there is room again: the cap counts open connections, not clients served.
    wait_until(
        lambda: httpx.post(f"{capped.url}/predict", json=X, timeout=5).status_code == 200,
        "a request answered once the held connections closed",
        timeout=5,
    )


# --- gRPC --------------------------------------------------------------------------------------


def test_grpc_silent_and_half_preface_sockets_are_closed_and_rpcs_still_work(limited: Server) -> None:
    pid = limited.process.pid
    baseline = open_fds(pid)

    def rpc() -> None:
        assert list(grpc_predict(limited.grpc).data.tensor.values) == [1.0, 2.0, 3.0]

    # Half of them send nothing, half only the first line of the HTTP/2 preface.
    async def main() -> tuple[list[float], int, float]:
        silent = asyncio.create_task(attack(limited.grpc_port, GRPC_SILENT // 2, b"", None))
        partial = asyncio.create_task(
            attack(limited.grpc_port, GRPC_SILENT // 2, b"PRI * HTTP/2.0\r\n", None)
        )
        await asyncio.sleep(1.0)
        fds = open_fds(pid)
        started = time.monotonic()
        await asyncio.to_thread(rpc)
        took = time.monotonic() - started
        return await silent + await partial, fds, took

    held, fds_during, took = asyncio.run(main())
    print(
        f"gRPC: {GRPC_SILENT} silent/half-preface sockets held {min(held):.2f}-{max(held):.2f} s; server fds"
        f" {baseline} -> {fds_during}; an RPC took {took * 1000:.0f} ms during the attack"
    )
    assert fds_during >= baseline + GRPC_SILENT * 0.9, (baseline, fds_during)
    assert took < 1.0, f"an RPC took {took:.2f} s during the attack"
    assert min(held) >= HEADER_TIMEOUT - 0.1, min(held)
    assert max(held) <= HEADER_TIMEOUT + LATE, sorted(held)[-5:]
    wait_until(lambda: open_fds(pid) <= baseline + 5, f"the server's fds back to {baseline}", timeout=5)


def test_grpc_past_the_cap_a_connection_is_refused_and_open_channels_work(capped: Server) -> None:
    with contextlib.ExitStack() as stack:
        channels = [stack.enter_context(own_channel(capped.grpc)) for _ in range(CAP)]
        for channel in channels:
            grpc_predict(capped.grpc, channel)
        with pytest.raises(grpc.RpcError) as refused:
            grpc_predict(capped.grpc)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value
        for channel in channels:  # still connected, still served
            assert list(grpc_predict(capped.grpc, channel).data.tensor.values) == [1.0, 2.0, 3.0]
        channels[0].close()

        def room_again() -> bool:
            try:
                grpc_predict(capped.grpc)
            except grpc.RpcError:
                return False
            return True

        wait_until(room_again, "an RPC on a new connection once one channel closed", timeout=5)


def test_a_tls_handshake_that_never_finishes_is_closed_at_the_header_timeout(model_dir: Path) -> None:
    """A TLS port: sockets that connect and send nothing (or half a ClientHello) are closed at
    the header timeout, not at the event loop's own 60 s, while TLS clients are served."""
    certs = make_certs(model_dir / "certs")
    args = ["--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key)]
    args += ["--header-timeout", str(HEADER_TIMEOUT)]
    http, grpc_port = free_port(), free_port()
    argv = [seldon_bin(), "microservice", "Echo", "--http-port", str(http), "--grpc-port", str(grpc_port)]
    argv += ["--host", "127.0.0.1", *args]
    with running(argv, cwd=model_dir, ready_port=grpc_port) as process:
        url = f"https://127.0.0.1:{http}/predict"
        wait_until(lambda: _tls_answers(url, certs.ca), "the TLS port answers", timeout=30)
        pid = process.pid
        baseline = open_fds(pid)

        async def main() -> tuple[list[float], float]:
            silent = asyncio.create_task(attack(http, 100, b"", None))
            partial = asyncio.create_task(attack(http, 100, b"\x16\x03\x01\x02\x00", None))
            await asyncio.sleep(1.0)
            started = time.monotonic()
            assert await asyncio.to_thread(_tls_answers, url, certs.ca)
            return await silent + await partial, time.monotonic() - started

        held, _ = asyncio.run(main())
        assert min(held) >= HEADER_TIMEOUT - 0.1, min(held)
        assert max(held) <= HEADER_TIMEOUT + LATE, sorted(held)[-5:]
        wait_until(lambda: open_fds(pid) <= baseline + 5, f"the server's fds back to {baseline}", timeout=5)


def _tls_answers(url: str, ca: Path) -> bool:
    try:
        answer = httpx.post(url, json=X, verify=str(ca), timeout=5)
        return answer.status_code == 200 and answer.json()["data"]["ndarray"] == X["data"]["ndarray"]
    except httpx.HTTPError:
        return False
