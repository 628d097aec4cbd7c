"""Run REST + gRPC edges in one or several worker processes.

Each worker is a forked process with its own event loop (uvloop), its own
uvicorn (httptools) server and its own grpc.aio server, all binding the same
ports with SO_REUSEPORT so the kernel spreads connections over every core.
Workers are forked before any gRPC object exists (gRPC is not fork-safe), and
the parent only supervises: it forwards SIGTERM/SIGINT for a graceful drain and
replaces a worker that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import uvicorn

from seldon_serving.servers.grpc_edge import server_options

log = logging.getLogger("seldon_serving.runner")


@dataclass(slots=True)
class ServeOptions:
    host: str = "0.0.0.0"
    http_port: int | None = 9000
    grpc_port: int | None = 5000
    workers: int = 1
    max_message: int = 4 * 1024 * 1024
    graceful_timeout: float = 10.0
    keep_alive: int = 30
    proxy_headers: bool = False


@dataclass(slots=True)
class Edges:
    """What one worker serves: an ASGI app, gRPC handlers, and hooks."""

    asgi_app: Any = None
    grpc_handlers: list[grpc.GenericRpcHandler] | None = None
    on_start: Callable[[], Any] | None = None  # awaitable factory, run inside the worker loop
    on_stop: Callable[[], Any] | None = None


EdgesFactory = Callable[[], Edges]


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal capture: the worker handles signals for both edges."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listen_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def _serve_worker(factory: EdgesFactory, options: ServeOptions) -> None:
    edges = factory()
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    http_server: _Uvicorn | None = None
    grpc_server: grpc.aio.Server | None = None

    if edges.on_start is not None:
        await edges.on_start()
    if edges.grpc_handlers and options.grpc_port is not None:
        grpc_server = grpc.aio.server(options=server_options(options.max_message))
        grpc_server.add_generic_rpc_handlers(tuple(edges.grpc_handlers))
        grpc_server.add_insecure_port(f"{options.host}:{options.grpc_port}")
        await grpc_server.start()

    def request_stop() -> None:
        stopping.set()
        if http_server is not None:
            http_server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request_stop)

    tasks = []
    if edges.asgi_app is not None and options.http_port is not None:
        config = uvicorn.Config(
            edges.asgi_app,
            http="httptools",
            loop="none",
            lifespan="off",
            access_log=False,
            log_level="warning",
            timeout_keep_alive=options.keep_alive,
            # No X-Forwarded-* rewriting by default: it wraps every request in a middleware.
            proxy_headers=options.proxy_headers,
            timeout_graceful_shutdown=options.graceful_timeout,
        )
        http_server = _Uvicorn(config)
        sock = _listen_socket(options.host, options.http_port)
        tasks.append(asyncio.create_task(http_server.serve(sockets=[sock])))
    tasks.append(asyncio.create_task(stopping.wait()))
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    request_stop()
    if grpc_server is not None:
        await grpc_server.stop(options.graceful_timeout)
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if edges.on_stop is not None:
        await edges.on_stop()


def _run_loop(factory: EdgesFactory, options: ServeOptions) -> None:
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner = asyncio.Runner()
    with runner:
        runner.run(_serve_worker(factory, options))


def _enable_multiprocess_metrics() -> str | None:
    """Point prometheus-client at a shared directory so every worker's samples add up."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    directory = tempfile.mkdtemp(prefix="seldon-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    from prometheus_client import values

    values.ValueClass = values.MultiProcessValue()
    return directory


def serve(factory: EdgesFactory, options: ServeOptions, *, announce: str = "") -> int:
    """Serve until SIGTERM/SIGINT.  Returns the process exit code."""
    if announce:
        print(announce, file=sys.stderr, flush=True)
    if options.workers <= 1:
        _run_loop(factory, options)
        return 0

    metrics_dir = _enable_multiprocess_metrics()
    children: dict[int, int] = {}
    stopping = False

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _run_loop(factory, options)
            except BaseException:
                log.exception("worker %d failed", index)
                code = 1
            finally:
                os._exit(code)
        children[pid] = index

    def forward(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for index in range(options.workers):
        spawn(index)
    recent_deaths: list[float] = []
    try:
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            index = children.pop(pid, None)
            if index is None or stopping:
                continue
            now = time.monotonic()
            recent_deaths = [t for t in recent_deaths if now - t < 10] + [now]
            if len(recent_deaths) > 3 * options.workers:
                log.error("workers keep dying; stopping the server")
                forward(signal.SIGTERM, None)
                return 1
            log.warning("worker %d (pid %d) exited with status %d; starting a new one", index, pid, status)
            spawn(index)
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
