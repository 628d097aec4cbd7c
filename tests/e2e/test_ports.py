"""A port is served by one server: a second one is refused in one sentence naming the port
(every worker binds with SO_REUSEPORT, so the kernel would otherwise split the connections
between the two servers and requests would randomly reach the other one's deployments)."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.deploy.gateway import EXAMPLES
from tests.helpers import ROOT, Gateway, Server, free_port, seldon_bin

pytestmark = pytest.mark.slow

MODELS = ROOT / "tests" / "compat" / "models"


def refused(*args: str, cwd: Path | None = None) -> str:
    """The one line a command that must not start prints (it exits 1)."""
    result = subprocess.run([seldon_bin(), *args], capture_output=True, text=True, timeout=60, cwd=cwd)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert (
        "seldon gateway:" not in result.stderr and "seldon microservice " not in result.stderr
    )  # no announcement
    return lines[0]


def test_a_second_gateway_on_a_taken_port_is_refused(
    start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    first = start_gateway(EXAMPLES, workers=2)
    other_state = str(tmp_path / "other")
    line = refused(
        *("serve", str(EXAMPLES), "--host", "127.0.0.1", "--http-port", str(first.http_port)),
        *("--grpc-port", str(free_port()), "--state-dir", other_state),
    )
    assert line == (
        f"error: port {first.http_port} (REST on 127.0.0.1) is in use by another Seldon Serving server "
        f"(pid {first.process.pid})"
    )
    assert not (tmp_path / "other" / "state.db").exists()  # refused before touching any state
    # every request still reaches the first server's deployments
    with httpx.Client() as client:
        for _ in range(20):
            path = "/seldon/mymodel/api/v0.1/predictions"
            assert client.post(first.url + path, json={"data": {"ndarray": [[1]]}}).status_code == 200


def test_a_second_microservice_on_a_taken_grpc_port_is_refused(
    start_microservice: Callable[..., Server],
) -> None:
    first = start_microservice("Doubler", cwd=MODELS, service_type="TRANSFORMER")
    line = refused(
        *("microservice", "Doubler", "--host", "127.0.0.1", "--http-port", str(free_port())),
        *("--grpc-port", str(first.grpc_port)),
        cwd=MODELS,
    )
    assert f"port {first.grpc_port} (gRPC on 127.0.0.1) is in use" in line
    assert "Traceback" not in line


def test_a_port_another_program_listens_on_is_refused() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        line = refused(
            *("microservice", "Doubler", "--host", "127.0.0.1", "--http-port", str(port)),
            *("--grpc-port", str(free_port())),
            cwd=MODELS,
        )
    assert line == f"error: port {port} (REST on 127.0.0.1) is in use"
