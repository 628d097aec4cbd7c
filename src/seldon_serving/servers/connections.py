"""Connection limits of the listening ports, REST and gRPC: how long a client may take to send
its headers, how long an idle connection stays, how many connections one worker keeps."""

from __future__ import annotations

from typing import Any

from seldon_serving.settings import ServerSettings


def rest_protocol(settings: ServerSettings) -> Any:
    """uvicorn's `http=`: the protocol class that enforces the limits."""
    return "httptools"  # TODO(issue 13): header timeout and connection cap


def grpc_limits(settings: ServerSettings) -> list[tuple[str, Any]]:
    """grpc.aio server options for the same limits."""
    return []  # TODO(issue 13)
