"""One rule for a component's FAILURE answer, on both REST apps and both transports: the
status it names (an HTTP error code) over REST, the matching gRPC code over gRPC."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.deploy.gateway import deployment, unit, write
from tests.helpers import ROOT, Gateway, Server
from tests.transport import Transport

pytestmark = pytest.mark.slow

MODELS = ROOT / "tests" / "e2e" / "models"
X = {"data": {"ndarray": [[1.0, 2.0]]}}


def test_a_failure_answer_is_an_error_on_the_microservice(
    start_microservice: Callable[..., Server], transport: Transport
) -> None:
    server = start_microservice("RawFailure", cwd=MODELS)
    reply = transport.predict(server, X)
    assert reply.failed_like(422) and "need 4 features" in (reply.info or str(reply.body))
    if transport.name == "grpc":
        assert reply.status == "INVALID_ARGUMENT"
    else:
        assert reply.body["status"]["reason"] == "WRONG_SHAPE"


def test_a_failure_answer_is_an_error_through_the_gateway(
    start_gateway: Callable[..., Gateway], transport: Transport, tmp_path: Path
) -> None:
    manifest = deployment("raw", unit("raw", "MODEL"), {"raw": "RawFailure"})
    path = write(tmp_path / "m", "raw.yaml", manifest)
    (tmp_path / "m" / "RawFailure.py").write_text((MODELS / "RawFailure.py").read_text())
    gateway = start_gateway(path)
    reply = transport.predict(gateway, X, deployment="raw")
    assert reply.failed_like(422) and "need 4 features" in (reply.info or str(reply.body))
