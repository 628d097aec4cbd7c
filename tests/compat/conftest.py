"""Fixtures for the compatibility tests: the real seldon-core venv and servers."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, Server, enter_all, free_port, microservice, stop

MODELS = Path(__file__).parent / "models"


def compat_venv() -> Path:
    return Path(os.environ.get("SELDON_COMPAT_VENV", ROOT / ".venv-compat"))


@pytest.fixture(scope="session")
def compat_python() -> Path:
    python = compat_venv() / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no seldon-core venv at {python.parent.parent}: run scripts/compat-venv.sh")
    return python


@pytest.fixture(scope="session")
def compat_oauth_python() -> Path:
    """seldon-core 1.4.0: the last SeldonClient that speaks the OAuth front end."""
    venv = Path(os.environ.get("SELDON_COMPAT_OAUTH_VENV", ROOT / ".venv-compat-oauth"))
    python = venv / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no seldon-core 1.4.0 venv at {venv}: run scripts/compat-venv.sh")
    return python


def run_seldon_client(python: Path, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run SeldonClient calls in the seldon-core venv (one process for many calls)."""
    completed = subprocess.run(
        [str(python), str(Path(__file__).parent / "driver.py")],
        input=json.dumps(calls).encode(),
        capture_output=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr.decode(errors="replace")[-3000:])
    return json.loads(completed.stdout)


class Endpoints:
    def __init__(self, server: Server) -> None:
        self.http = server.http_port
        self.grpc = server.grpc_port

    def rest(self) -> str:
        return f"127.0.0.1:{self.http}"

    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc}"


def ours(model: str, service_type: str, timeout: float = 30.0) -> AbstractContextManager[Server]:
    """`seldon microservice` serving a class of tests/compat/models (not started yet)."""
    return microservice(model, cwd=MODELS, service_type=service_type, timeout=timeout)


@contextlib.contextmanager
def seldons(python: Path, model: str, service_type: str, timeout: float = 60.0) -> Iterator[Server]:
    """seldon-core's own `seldon-core-microservice` wrapping the same class."""
    with microservice(
        model,
        "--metrics-port",
        str(free_port()),
        cwd=MODELS,
        service_type=service_type,
        command=python.parent / "seldon-core-microservice",
        host=None,  # seldon-core's wrapper has no --host
        env={"TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=timeout,
    ) as server:
        try:
            yield server
        finally:
            # Killed, not drained: its graceful exit spends seconds of CPU (TensorFlow's) on
            # nothing a test looks at.
            stop(server.process, timeout=0)


@pytest.fixture(scope="module")
def servers_for(compat_python: Path) -> Iterator[Any]:
    """servers_for({name: (model, service_type)}) -> {name: (ours, seldon's) Endpoints}: every
    server started side by side, all stopped at module end."""
    with contextlib.ExitStack() as stack:

        def start(wanted: dict[str, tuple[str, str]]) -> dict[str, tuple[Endpoints, Endpoints]]:
            # Ten servers at once on a small machine: each gets longer to answer than alone.
            contexts = [
                context
                for model, service_type in wanted.values()
                for context in (
                    ours(model, service_type, timeout=120),
                    seldons(compat_python, model, service_type, timeout=120),
                )
            ]
            servers = iter(enter_all(stack, contexts))
            return {name: (Endpoints(next(servers)), Endpoints(next(servers))) for name in wanted}

        yield start
