"""REST edge of a component microservice: Seldon's internal API paths over the
component data plane.  Decoding, dispatch and error mapping happen here once for
every path; the plane does the work.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from seldon_serving.protocol import json_codec
from seldon_serving.protocol.errors import MethodNotFound, SeldonError, UserCodeError
from seldon_serving.protocol.message import SeldonMessage
from seldon_serving.servers import http
from seldon_serving.servers.component_plane import ComponentPlane
from seldon_serving.servers.openapi import microservice_openapi

log = logging.getLogger("seldon_serving.microservice")

Handler = Callable[[Any], Awaitable[SeldonMessage]]


class MicroserviceApp:
    """ASGI application; one per worker process."""

    def __init__(self, plane: ComponentPlane, *, max_body: int = http.DEFAULT_MAX_BODY) -> None:
        self.plane = plane
        self.max_body = max_body

        def message_op(fn: Callable[[SeldonMessage], Awaitable[SeldonMessage]]) -> Handler:
            return lambda obj: fn(json_codec.decode_message(obj))

        predict = message_op(plane.predict)
        feedback: Handler = lambda obj: plane.send_feedback(json_codec.decode_feedback(obj))  # noqa: E731
        aggregate: Handler = lambda obj: plane.aggregate(json_codec.decode_message_list(obj))  # noqa: E731
        self.message_routes: dict[str, Handler] = {
            "/predict": predict,
            "/api/v1.0/predictions": predict,
            "/api/v0.1/predictions": predict,
            "/transform-input": message_op(plane.transform_input),
            "/transform-output": message_op(plane.transform_output),
            "/route": message_op(plane.route),
            "/aggregate": aggregate,
            "/combine": aggregate,
            "/send-feedback": feedback,
            "/api/v1.0/feedback": feedback,
            "/api/v0.1/feedback": feedback,
        }
        self.get_routes: dict[str, Callable[[], Awaitable[tuple[int, bytes, list]]]] = {
            "/health/ping": self._ping,
            "/health/status": self._health_status,
            "/api/v1.0/health/status": self._health_status,
            "/metadata": self._metadata,
            "/api/v1.0/metadata": self._metadata,
            "/metrics": self._metrics,
            "/prometheus": self._metrics,
            "/seldon.json": self._openapi,
            "/openapi.json": self._openapi,
        }
        self._openapi_body: bytes | None = None

    async def __call__(self, scope: http.Scope, receive: http.Receive, send: http.Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await http.lifespan(receive, send)
            return
        path = scope["path"]
        try:
            handler = self.message_routes.get(path)
            if handler is not None:
                http.check_method(scope, http.MESSAGE_METHODS)
                body = await http.read_body(receive, self.max_body)
                response = await handler(http.request_json(scope, body))
                payload = json_codec.encode_message(response)
                status = _status_override(response)
                await http.send_bytes(send, status, json_codec.dumps(payload), http.JSON_HEADERS)
                return
            getter = self.get_routes.get(path)
            if getter is None:
                raise MethodNotFound(f"no such path: {path}")
            http.check_method(scope, http.READ_METHODS)
            status, body, headers = await getter()
            await http.send_bytes(send, status, body, headers)
        except SeldonError as error:
            if error.http_status >= 500:
                log.error("%s %s: %s", scope["method"], path, error.info)
            await http.send_error(send, error)
        except Exception as exc:  # a bug of ours: answer like a user error, never leak a trace
            log.exception("unexpected error on %s", path)
            await http.send_error(send, UserCodeError(f"{type(exc).__name__}: {exc}"))

    async def _ping(self) -> tuple[int, bytes, list]:
        return 200, b"pong", http.TEXT_HEADERS

    async def _health_status(self) -> tuple[int, bytes, list]:
        response = await self.plane.health_status()
        return 200, json_codec.dumps(json_codec.encode_message(response)), http.JSON_HEADERS

    async def _metadata(self) -> tuple[int, bytes, list]:
        return 200, json_codec.dumps(self.plane.metadata()), http.JSON_HEADERS

    async def _metrics(self) -> tuple[int, bytes, list]:
        body, content_type = self.plane.metrics.render()
        return 200, body, [(b"content-type", content_type.encode())]

    async def _openapi(self) -> tuple[int, bytes, list]:
        if self._openapi_body is None:
            self._openapi_body = json_codec.dumps(microservice_openapi())
        return 200, self._openapi_body, http.JSON_HEADERS


def _status_override(response: SeldonMessage) -> int:
    """Seldon lets a component pick the HTTP status through status.code (raw answers)."""
    status = response.status
    if status:
        code = status.get("code")
        if isinstance(code, int) and 200 <= code < 600:
            return code
        if status.get("status") in ("FAILURE", 1):
            return 500
    return 200
