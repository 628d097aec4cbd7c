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

from tests.helpers import Server, enter_all, free_port, microservice, stop
from tests.helpers import compat_python as reference_python

MODELS = Path(__file__).parent / "models"
NO_TENSORFLOW = Path(__file__).parent / "no_tensorflow"


@pytest.fixture(scope="session")
def compat_python() -> Path:
    python = reference_python()
    if not python.exists():  # CI turns this skip into a failure (tests/conftest.py)
        pytest.skip(f"no seldon-core venv at {python.parent.parent}: run scripts/compat-venv.sh")
    return python


@pytest.fixture(scope="session")
def compat_oauth_python() -> Path:
    """seldon-core 1.4.0: the last SeldonClient that speaks the OAuth front end."""
    python = reference_python(oauth=True)
    if not python.exists():
        pytest.skip(f"no seldon-core 1.4.0 venv at {python.parent.parent}: run scripts/compat-venv.sh")
    return python


def run_seldon_client(
    python: Path, calls: list[dict[str, Any]], *, tensorflow: bool = True
) -> list[dict[str, Any]]:
    """Run SeldonClient calls in the seldon-core venv (one process for many calls).  Without
    `tensorflow` (calls that need no tftensor) seldon-core runs as where TensorFlow is not
    installed, which starts 4 s faster."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if not tensorflow:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NO_TENSORFLOW), env.get("PYTHONPATH")]))
    completed = subprocess.run(
        [str(python), str(Path(__file__).parent / "driver.py")],
        input=json.dumps(calls).encode(),
        capture_output=True,
        timeout=300,
        env=env,
    )
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr.decode(errors="replace")[-3000:])
    return json.loads(completed.stdout)


class Endpoints:
    def __init__(self, server: Server) -> None:
        self.http = server.http_port
        self.grpc = server.grpc_port
        self.metrics = server.metrics_port

    def rest(self) -> str:
        return f"127.0.0.1:{self.http}"

    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc}"


def ours(
    model: str, service_type: str, timeout: float = 30.0, env: dict[str, str] | None = None
) -> AbstractContextManager[Server]:
    """`seldon microservice` serving a class of tests/compat/models (not started yet), with its
    metrics on a port of their own too, as the wrapper has them."""
    return microservice(
        model, cwd=MODELS, service_type=service_type, timeout=timeout, env=env, metrics_port=free_port()
    )


@contextlib.contextmanager
def seldons(
    python: Path,
    model: str,
    service_type: str,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    tensorflow: bool = True,
) -> Iterator[Server]:
    """seldon-core's own `seldon-core-microservice` wrapping the same class (`tensorflow=False`:
    as installed without it, which starts faster and smaller; tftensors need it)."""
    environment = {"TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    if not tensorflow:
        environment["PYTHONPATH"] = str(NO_TENSORFLOW)
    with microservice(
        model,
        cwd=MODELS,
        service_type=service_type,
        command=python.parent / "seldon-core-microservice",
        host=None,  # seldon-core's wrapper has no --host
        env=environment,
        metrics_port=free_port(),
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
    """servers_for({name: (model, service_type[, {"env": {...}, "tensorflow": False}])}) ->
    {name: (ours, seldon's) Endpoints}: every server started side by side (with the same
    environment), all stopped at module end."""
    with contextlib.ExitStack() as stack:

        def start(wanted: dict[str, tuple[Any, ...]]) -> dict[str, tuple[Endpoints, Endpoints]]:
            # Ten servers at once on a small machine: each gets longer to answer than alone.
            contexts: list[AbstractContextManager[Server]] = []
            for model, service_type, *more in wanted.values():
                options: dict[str, Any] = more[0] if more else {}
                env = options.get("env")
                contexts.append(ours(model, service_type, timeout=120, env=env))
                contexts.append(
                    seldons(
                        compat_python,
                        model,
                        service_type,
                        timeout=120,
                        env=env,
                        tensorflow=options.get("tensorflow", True),
                    )
                )
            servers = iter(enter_all(stack, contexts))
            return {name: (Endpoints(next(servers)), Endpoints(next(servers))) for name in wanted}

        yield start
