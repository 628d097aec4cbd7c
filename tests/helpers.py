"""Test helpers shared by the end-to-end and compatibility tests: free ports and
real server processes that are always stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def seldon_bin(name: str = "seldon") -> str:
    return str(VENV_BIN / name)
