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
import errno
import fcntl
import gc
import logging
import os
import shutil
import signal
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import uvicorn

from seldon_serving.engine import tracing
from seldon_serving.protocol.errors import ServingError
from seldon_serving.servers import connections, logs, tls
from seldon_serving.servers.grpc_edge import server_options
from seldon_serving.settings import ServerSettings

log = logging.getLogger("seldon_serving.runner")


class PortInUse(ServingError):
    """A port this server needs is taken (by another server of ours, or by anything else)."""


# A forked worker's exit code when what it serves cannot be built (a class or model that does
# not load, said in one sentence): starting it again would fail again, so the server stops.
EXIT_CANNOT_START = 3


@dataclass(slots=True)
class Edges:
    """What one worker serves: an ASGI app, gRPC handlers, and hooks."""

    asgi_app: Any = None
    grpc_handlers: list[grpc.GenericRpcHandler] | None = None
    metrics_app: Any = None  # an ASGI app for the metrics port, if the settings name one
    admin_app: Any = None  # an ASGI app for the admin port, if the settings name one
    on_start: Callable[[], Any] | None = None  # awaitable factory, run inside the worker loop
    on_stop: Callable[[], Any] | None = None


EdgesFactory = Callable[[], Edges]


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal capture (the worker handles signals for both edges), and
    with a deadline on TLS handshakes (uvicorn passes none: the event loop's 60 s applies, and a
    connection still handshaking is not yet one the header timeout or the cap can see)."""

    def __init__(self, config: uvicorn.Config, handshake_timeout: float) -> None:
        super().__init__(config)
        self.handshake_timeout = handshake_timeout

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        config = self.config
        if sockets is None or config.ssl is None:
            await super().startup(sockets)
            return

        # uvicorn's own start on given sockets (lifespan is off here), plus the handshake deadline.
        def create_protocol(_loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state, _loop=_loop
            )

        loop = asyncio.get_running_loop()
        self.servers = [
            await loop.create_server(
                create_protocol,
                sock=sock,
                ssl=config.ssl,
                backlog=config.backlog,
                ssl_handshake_timeout=self.handshake_timeout,
            )
            for sock in sockets
        ]
        self.started = True


def _lock_dir() -> Path:
    directory = Path(tempfile.gettempdir()) / f"seldon-serving-ports-{os.getuid()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory


def _claim(kind: str, host: str, port: int) -> Any:
    """Make sure this server alone will serve `port`, or raise PortInUse naming it.

    Every worker binds with SO_REUSEPORT, which would let a second server of ours share the
    port and the kernel split connections between them.  So: one lock file per port, held
    for the server's life (another server of ours fails here), and a trial bind without
    SO_REUSEPORT (anything else already listening fails it)."""
    handle = (_lock_dir() / f"{port}.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "?"
        handle.close()
        raise PortInUse(
            f"port {port} ({kind} on {host}) is in use by another Seldon Serving server (pid {owner})"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as trial:
        trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no obstacle
        try:
            trial.bind((host, port))
        except OSError as exc:
            handle.close()
            reason = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror})"
            raise PortInUse(f"port {port} ({kind} on {host}) {reason}") from None
    return handle


def claim_ports(settings: ServerSettings) -> list[Any]:
    """The locks of every port `settings` serves (keep them until the server stops)."""
    claims: list[Any] = []
    try:
        ports = (
            ("REST", settings.http_port),
            ("gRPC", settings.grpc_port),
            ("metrics", settings.metrics_port),
        )
        for kind, port in ports:
            if port:  # port 0: the system picks a free one, nothing to claim
                claims.append(_claim(kind, settings.host, port))
        if settings.admin_port:
            claims.append(_claim("admin", settings.admin_host, settings.admin_port))
    except PortInUse:
        for handle in claims:
            handle.close()
        raise
    return claims


def _listen_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _listen_unix(path: str) -> socket.socket:
    """A listening Unix domain socket at `path` (a stale socket file left there is replaced)."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, 0o600)  # only this user's processes may call the component
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise PortInUse(f"Unix socket {path} cannot be bound ({exc.strerror})") from None
    sock.set_inheritable(True)
    return sock


async def _serve_worker(
    factory: EdgesFactory, settings: ServerSettings, uds: socket.socket | None = None
) -> None:
    edges = factory()
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    grpc_server: grpc.aio.Server | None = None
    # The REST sockets are bound before anything starts, so a failure leaves nothing half-running.
    apps: list[tuple[Any, socket.socket]] = []
    if edges.asgi_app is not None and uds is not None:
        apps.append((edges.asgi_app, uds))
    if edges.asgi_app is not None and settings.http_port is not None:
        apps.append((edges.asgi_app, _listen_socket(settings.host, settings.http_port)))
    if edges.metrics_app is not None and settings.metrics_port is not None:
        apps.append((edges.metrics_app, _listen_socket(settings.host, settings.metrics_port)))
    if edges.admin_app is not None and settings.admin_port is not None:
        apps.append((edges.admin_app, _listen_socket(settings.admin_host, settings.admin_port)))
    http_servers: list[_Uvicorn] = []

    def request_stop() -> None:
        stopping.set()
        for server in http_servers:
            server.should_exit = True

    tasks: list[asyncio.Task[Any]] = []
    try:
        if edges.on_start is not None:
            await edges.on_start()
        if edges.grpc_handlers and settings.grpc_port is not None:
            options = server_options(settings.max_message) + connections.grpc_limits(settings)
            grpc_server = grpc.aio.server(options=options)
            grpc_server.add_generic_rpc_handlers(tuple(edges.grpc_handlers))
            address = f"{settings.host}:{settings.grpc_port}"
            try:
                if settings.tls is not None:
                    bound = grpc_server.add_secure_port(address, tls.grpc_server_credentials(settings.tls))
                else:
                    bound = grpc_server.add_insecure_port(address)
            except RuntimeError:  # newer grpcio raises where older ones answered 0
                bound = 0
            if bound == 0:
                raise PortInUse(f"port {settings.grpc_port} (gRPC on {settings.host}) cannot be bound")
            await grpc_server.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, request_stop)
        for app, sock in apps:
            secure = settings.tls is not None and sock is not uds  # a Unix socket is this user's only
            config = uvicorn.Config(
                app,
                http=connections.rest_protocol(settings),
                **(tls.uvicorn_options(settings.tls) if secure and settings.tls is not None else {}),
                loop="none",
                lifespan="off",
                access_log=False,
                log_level="warning",
                timeout_keep_alive=settings.keep_alive,
                # No X-Forwarded-* rewriting by default: it wraps every request in a middleware.
                proxy_headers=settings.proxy_headers,
                timeout_graceful_shutdown=round(settings.graceful_timeout),
            )
            http_servers.append(_Uvicorn(config, settings.header_timeout))
            tasks.append(asyncio.create_task(http_servers[-1].serve(sockets=[sock])))
        tasks.append(asyncio.create_task(stopping.wait()))
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        request_stop()
        # Stopped here, inside the loop: a gRPC server left to the garbage collector after
        # the loop closed prints a traceback at exit.
        if grpc_server is not None:
            await grpc_server.stop(settings.graceful_timeout)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for _, sock in apps:
            sock.close()
        if edges.on_stop is not None:
            await edges.on_stop()


def _run_loop(factory: EdgesFactory, settings: ServerSettings, uds: socket.socket | None = None) -> None:
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner = asyncio.Runner()
    with runner:
        runner.run(_serve_worker(factory, settings, uds))


def _enable_multiprocess_metrics() -> str | None:
    """Point prometheus-client at a shared directory so every worker's samples add up."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    directory = tempfile.mkdtemp(prefix="seldon-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    from prometheus_client import values

    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    return directory


def serve(
    factory: EdgesFactory, settings: ServerSettings, *, announce: str = "", claims: list[Any] | None = None
) -> int:
    """Serve until SIGTERM/SIGINT.  Returns the process exit code.

    PortInUse (before anything starts, nothing announced) when a port is taken; `claims`
    are the ports' locks if the caller took them already (`claim_ports`)."""
    if claims is None:
        claims = claim_ports(settings)
    # A Unix socket cannot be shared with SO_REUSEPORT: bound once, here, and inherited by every worker.
    uds = _listen_unix(settings.uds) if settings.uds is not None else None
    try:
        if announce:
            print(announce, file=sys.stderr, flush=True)
        if settings.workers <= 1:
            _run_loop(factory, settings, uds)
            return 0
        return _supervise(factory, settings, uds)
    finally:
        for handle in claims:
            handle.close()
        if uds is not None and settings.uds is not None:
            uds.close()
            with contextlib.suppress(OSError):
                os.unlink(settings.uds)


def _supervise(factory: EdgesFactory, settings: ServerSettings, uds: socket.socket | None = None) -> int:
    """Fork the workers and keep them running until a signal says stop."""
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
                logs.set_worker(index)
                _run_loop(factory, settings, uds)
            except ServingError as exc:  # raised on purpose: its sentence says it all
                log.error("worker %d cannot start: %s", index, exc)
                code = EXIT_CANNOT_START
            except BaseException:
                log.exception("worker %d failed", index)
                code = 1
            finally:
                try:
                    tracing.flush()
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
    # What the workers inherit stays shared: a full collection in a worker writes to the GC
    # header of every object it visits, copying each inherited page it touches (the soak saw
    # each worker's PSS jump by ~10 MB at its first full collection; bench/SOAK.md).
    gc.freeze()
    for index in range(settings.workers):
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
            index = children.pop(pid, -1)
            if index < 0 or stopping:
                continue
            if os.waitstatus_to_exitcode(status) == EXIT_CANNOT_START:
                log.error("stopping the server: worker %d cannot start (see above)", index)
                forward(signal.SIGTERM, None)
                return 1
            now = time.monotonic()
            recent_deaths = [t for t in recent_deaths if now - t < 10] + [now]
            if len(recent_deaths) > 3 * settings.workers:
                log.error("workers keep dying; stopping the server")
                forward(signal.SIGTERM, None)
                return 1
            log.warning("worker %d (pid %d) exited with status %d; starting a new one", index, pid, status)
            spawn(index)
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
