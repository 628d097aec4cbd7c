"""Fixtures for the compatibility tests: the real seldon-core venv and servers."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, free_port, running, seldon_bin

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
    def __init__(self, http: int, grpc: int) -> None:
        self.http = http
        self.grpc = grpc

    def rest(self) -> str:
        return f"127.0.0.1:{self.http}"

    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc}"


def start_ours(model: str, service_type: str, extra_env: dict[str, str] | None = None) -> Any:
    http, grpc = free_port(), free_port()
    args = [
        seldon_bin(),
        "microservice",
        model,
        "--service-type",
        service_type,
        "--http-port",
        str(http),
        "--grpc-port",
        str(grpc),
        "--host",
        "127.0.0.1",
    ]
    ctx = running(
        args, cwd=MODELS, env=extra_env, ready_url=f"http://127.0.0.1:{http}/health/ping", ready_port=grpc
    )
    return ctx, Endpoints(http, grpc)


def start_seldons(
    python: Path, model: str, service_type: str, extra_env: dict[str, str] | None = None
) -> Any:
    http, grpc, metrics = free_port(), free_port(), free_port()
    exe = python.parent / "seldon-core-microservice"
    args = [
        str(exe),
        model,
        "--service-type",
        service_type,
        "--http-port",
        str(http),
        "--grpc-port",
        str(grpc),
        "--metrics-port",
        str(metrics),
    ]
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", **(extra_env or {})}
    ctx = running(
        args,
        cwd=MODELS,
        env=env,
        ready_url=f"http://127.0.0.1:{http}/health/ping",
        ready_port=grpc,
        timeout=60,
    )
    return ctx, Endpoints(http, grpc)


@pytest.fixture(scope="module")
def servers_for(compat_python: Path) -> Iterator[Any]:
    """servers_for(model, service_type) -> (ours, seldon's) Endpoints, stopped at module end."""
    contexts: list[Any] = []

    def start(model: str, service_type: str = "MODEL") -> tuple[Endpoints, Endpoints]:
        ours_ctx, ours = start_ours(model, service_type)
        theirs_ctx, theirs = start_seldons(compat_python, model, service_type)
        for ctx in (ours_ctx, theirs_ctx):
            ctx.__enter__()
            contexts.append(ctx)
        return ours, theirs

    yield start
    for ctx in reversed(contexts):
        ctx.__exit__(None, None, None)
