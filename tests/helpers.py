"""Test helpers shared by the end-to-end and compatibility tests: free ports and
real server processes that are always stopped."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TypeVar

import httpx

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

T = TypeVar("T")


_handed_out: collections.deque[int] = collections.deque(maxlen=256)


def free_port() -> int:
    """A port nothing listens on, and not one this process was given lately: the system may
    hand out a port again as soon as it is released, and a server given the same port for two
    of its ports (REST and admin, say) refuses to start."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.append(port)
            return port


def _output(process: subprocess.Popen[bytes]) -> str:
    log = getattr(process, "log_path", None)
    if log is None:
        return ""
    return Path(log).read_text(errors="replace")[-3000:]


def wait_for_http(url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {_output(process)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def wait_until(
    condition: Callable[[], object], what: str, timeout: float = 10.0, every: float = 0.02
) -> None:
    """Poll `condition` until it is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still not so after {timeout} s")
        time.sleep(every)


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {_output(process)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open within {timeout} s")


@contextlib.contextmanager
def running(
    args: Sequence[str],
    *,
    cwd: Path | str | None = None,
    env: dict[str, str] | None = None,
    ready_url: str | None = None,
    ready_port: int | None = None,
    timeout: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server process, wait until it answers, and always stop it (SIGTERM, then SIGKILL)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    # Output goes to a file, never a pipe: a pipe nobody reads fills up and blocks a chatty server.
    log = tempfile.NamedTemporaryFile(prefix="seldon-test-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        list(args),
        cwd=cwd,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    process.log_path = log.name  # type: ignore[attr-defined]
    log.close()
    try:
        if ready_url:
            wait_for_http(ready_url, process, timeout)
        if ready_port:
            wait_for_port(ready_port, process, timeout)
        yield process
    finally:
        stop(process)
        Path(log.name).unlink(missing_ok=True)


def stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> int | None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # stragglers of the group (forked workers)
    return process.returncode


def compat_python(oauth: bool = False) -> Path:
    """The python of the reference venv with the real seldon-core (1.18.2, or 1.4.0 for the
    OAuth SeldonClient), made by scripts/compat-venv.sh; SELDON_COMPAT_VENV /
    SELDON_COMPAT_OAUTH_VENV point elsewhere."""
    variable, default = (
        ("SELDON_COMPAT_OAUTH_VENV", ".venv-compat-oauth")
        if oauth
        else ("SELDON_COMPAT_VENV", ".venv-compat")
    )
    return Path(os.environ.get(variable) or ROOT / default) / "bin" / "python"


def seldon_bin(name: str = "seldon") -> str:
    return str(VENV_BIN / name)


def log_of(process: subprocess.Popen[bytes]) -> str:
    """Everything a server started by `running` has written so far (stdout and stderr)."""
    return Path(process.log_path).read_text(errors="replace")  # type: ignore[attr-defined]


class Server:
    """A `seldon serve` or `seldon microservice` process listening on 127.0.0.1."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        http_port: int,
        grpc_port: int,
        metrics_port: int | None = None,
    ) -> None:
        self.process = process
        self.http_port = http_port
        self.grpc_port = grpc_port
        self.metrics_port = metrics_port  # Prometheus on a port of its own, if it has one
        self.url = f"http://127.0.0.1:{http_port}"
        self.grpc = f"127.0.0.1:{grpc_port}"

    def log(self) -> str:
        return log_of(self.process)


class Gateway(Server):
    """A running `seldon serve`; `cli` runs other `seldon` commands against its admin port."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        http_port: int,
        grpc_port: int,
        state_dir: Path,
        admin_port: int | None = None,
    ) -> None:
        super().__init__(process, http_port, grpc_port)
        self.state_dir = state_dir
        self.admin_port = admin_port
        self.admin_url = f"http://127.0.0.1:{admin_port}" if admin_port else ""

    def cli(
        self,
        *args: str,
        stdin: str | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `seldon <args> --server <this gateway's admin port>` (`env` added to the environment)."""
        return subprocess.run(
            [seldon_bin(), *args, "--server", self.admin_url],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=cwd,
            env={**os.environ, **env} if env else None,
        )


@contextlib.contextmanager
def microservice(
    model: str,
    *args: str,
    cwd: Path | str | None = None,
    service_type: str | None = None,
    workers: int = 1,
    env: dict[str, str] | None = None,
    log_level: str | None = None,
    command: str | Path = "microservice",
    host: str | None = "127.0.0.1",
    http_port: int | None = None,
    grpc_port: int | None = None,
    metrics_port: int | None = None,
    timeout: float = 30.0,
) -> Iterator[Server]:
    """`seldon microservice MODEL ARGS...` on free loopback ports (or the ones given, to start a
    server again where it was), stopped at exit.  `command` may name another wrapper with
    Seldon's command line: a script of this venv or a path (seldon-core's own, which has no
    `--host`: pass `host=None`)."""
    http, grpc = http_port or free_port(), grpc_port or free_port()
    if command == "microservice":
        argv = [seldon_bin(), "microservice", model]
    else:
        argv = [str(command) if os.sep in str(command) else seldon_bin(str(command)), model]
    if service_type:
        argv += ["--service-type", service_type]
    argv += ["--http-port", str(http), "--grpc-port", str(grpc)]
    if metrics_port is None and command != "microservice":
        metrics_port = free_port()  # Seldon's command line opens a metrics port (6000) by default
    if metrics_port is not None:
        argv += ["--metrics-port", str(metrics_port)]
    if host:
        argv += ["--host", host]
    if workers != 1:
        argv += ["--workers", str(workers)]
    if log_level:
        argv += ["--log-level", log_level]
    argv += list(args)
    ready = f"http://127.0.0.1:{http}/health/ping"
    with running(argv, cwd=cwd, env=env, ready_url=ready, ready_port=grpc, timeout=timeout) as process:
        yield Server(process, http, grpc, metrics_port)


@contextlib.contextmanager
def gateway(
    *paths: str | Path,
    state_dir: Path,
    args: Sequence[str] = (),
    workers: int = 1,
    log_level: str | None = "WARNING",
    env: dict[str, str] | None = None,
    http_port: int | None = None,
    grpc_port: int | None = None,
    admin_port: int | None = None,
    timeout: float = 60.0,
    ready: bool = True,
) -> Iterator[Gateway]:
    """`seldon serve PATHS... ARGS...` on free loopback ports (or the ones given, to start a
    gateway again where it was), its admin port too, stopped at exit.  `ready=False`: wait
    only for its gRPC port to open, not for `/ping` over plain http (a TLS server)."""
    http, grpc = http_port or free_port(), grpc_port or free_port()
    admin = admin_port or free_port()
    argv = [seldon_bin(), "serve", *map(str, paths), "--http-port", str(http), "--grpc-port", str(grpc)]
    argv += ["--admin-port", str(admin)]
    argv += ["--host", "127.0.0.1", "--state-dir", str(state_dir)]
    if workers != 1:
        argv += ["--workers", str(workers)]
    if log_level:
        argv += ["--log-level", log_level]
    argv += list(args)
    ready_url = f"http://127.0.0.1:{http}/ping" if ready else None
    with running(argv, env=env, ready_url=ready_url, ready_port=grpc, timeout=timeout) as process:
        yield Gateway(process, http, grpc, state_dir, admin)


def enter_all(stack: contextlib.ExitStack, contexts: Sequence[AbstractContextManager[T]]) -> list[T]:
    """Enter several server contexts side by side (each starts and waits for its server in a
    thread of its own) and have `stack` leave them side by side too.  Every context that was
    entered is left when the stack closes, even if another one failed to start (whose error
    is raised here)."""
    entered: list[AbstractContextManager[T]] = []
    stack.callback(_exit_all, entered)  # before anything starts: nothing started is ever left running

    def enter(context: AbstractContextManager[T]) -> T:
        value = context.__enter__()
        entered.append(context)
        return value

    with ThreadPoolExecutor(max_workers=max(1, len(contexts))) as pool:
        futures = [pool.submit(enter, context) for context in contexts]
    return [future.result() for future in futures]


def _exit_all(contexts: list[AbstractContextManager[T]]) -> None:
    with ThreadPoolExecutor(max_workers=max(1, len(contexts))) as pool:
        futures = [pool.submit(context.__exit__, None, None, None) for context in contexts]
    for future in futures:
        future.result()
