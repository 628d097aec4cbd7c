"""One client for REST and gRPC, so a test can assert the same behaviour over both: the
answer (as proto3 JSON) or the failure (HTTP status / gRPC code, and the info sentence)."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any

import grpc
import httpx
from google.protobuf import json_format

from seldon_serving.protocol._pb import prediction_pb2 as pb
from seldon_serving.protocol._pb import prediction_pb2_grpc as pb_grpc

TRANSPORTS = ("rest", "grpc")

# HTTP status -> the gRPC code our edges answer with (protocol/errors.py's table).
_GRPC_CODE = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 413: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}


@dataclass
class Reply:
    ok: bool
    status: int | str  # HTTP status, or gRPC code name
    body: dict[str, Any]  # the answer as proto3 JSON (REST: the body as sent)
    info: str = ""  # the failure's sentence

    def failed_like(self, http_status: int) -> bool:
        """Whether this is the failure an HTTP `http_status` is (over gRPC: its code)."""
        return not self.ok and self.status in (http_status, _GRPC_CODE.get(http_status, "INVALID_ARGUMENT"))


class Transport:
    def __init__(self, name: str) -> None:
        self.name = name
        self._http = httpx.Client(timeout=30)
        self._channels: dict[str, grpc.Channel] = {}

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType] | None) -> None:
        self._http.close()
        for channel in self._channels.values():
            channel.close()

    def __repr__(self) -> str:
        return self.name

    def _channel(self, target: str) -> grpc.Channel:
        if target not in self._channels:
            self._channels[target] = grpc.insecure_channel(target)
        return self._channels[target]

    def predict(self, server: Any, message: dict[str, Any], *, deployment: str | None = None) -> Reply:
        """Predict on a microservice (`deployment` None) or through a gateway's deployment."""
        if self.name == "rest":
            path = f"/seldon/{deployment}/api/v1.0/predictions" if deployment else "/predict"
            r = self._http.post(server.url + path, json=message)
            body = r.json()
            info = (body.get("status") or {}).get("info", "") if r.status_code >= 400 else ""
            return Reply(r.status_code < 400, r.status_code, body, info)
        channel = self._channel(server.grpc)
        stub = pb_grpc.SeldonStub(channel) if deployment else pb_grpc.ModelStub(channel)
        request = json_format.ParseDict(message, pb.SeldonMessage())
        metadata = [("seldon", deployment)] if deployment else None
        try:
            answer = stub.Predict(request, metadata=metadata, timeout=30)
        except grpc.RpcError as exc:
            return Reply(False, exc.code().name, {}, exc.details() or "")
        return Reply(True, "OK", json_format.MessageToDict(answer))
