"""REST edge of a component microservice: Seldon's internal API paths over the component
data plane.  The message paths take the raw fast path (`servers.rest`); health, metadata,
metrics and OpenAPI are Starlette routes.

Answers are written as Seldon's Python wrapper writes them (Flask's jsonify: keys sorted, a
trailing newline, `"meta": {}` even when empty); a feedback answer is, as there, the JSON of
a protobuf message (empty fields left out).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from seldon_serving.engine import tracing
from seldon_serving.protocol import json_codec, proto_codec, v2, v2_edge
from seldon_serving.protocol.errors import SeldonError, answer_status
from seldon_serving.protocol.message import SeldonMessage
from seldon_serving.servers import http, rest
from seldon_serving.servers.component_plane import ComponentPlane
from seldon_serving.servers.logs import log_failure
from seldon_serving.servers.metrics import Metrics
from seldon_serving.servers.openapi import microservice_openapi

log = logging.getLogger("seldon_serving.microservice")

Handler = Callable[[Any], Awaitable[rest.Raw]]
V2Handler = Callable[[v2_edge.Target, http.Scope, http.Receive], Awaitable[rest.Raw]]


async def serve_v2(
    scope: http.Scope, receive: http.Receive, send: http.Send, handle: V2Handler, log: logging.Logger
) -> bool:
    """Answer a V2 path (False when `scope` names none): every failure is the protocol's
    `{"error": "<one sentence>"}` with the error table's status, never a trace."""
    path = scope["path"]
    target = v2_edge.parse_path(path)
    if target is None and path != "/v2" and not path.startswith("/v2/"):
        return False
    try:
        if target is None:
            raise v2_edge.ModelNotFound(f"no such V2 path: {path}")
        allowed = http.MESSAGE_METHODS - {"GET"} if target[0] == "infer" else http.READ_METHODS
        http.check_method(scope, allowed)
        status, body, headers = await handle(target, scope, receive)
        if scope["method"] == "HEAD":
            body = b""
    except SeldonError as error:
        log_failure(log, f"{scope['method']} {scope['path']}", error)
        status, body = error.http_status, v2_edge.error_body(error)
        headers = http.error_headers(error, v2_edge.JSON_HEADERS)
    except Exception as exc:  # a bug of ours: the protocol's error form, logged where it came from
        log.exception("unexpected error on %s", scope["path"])
        status, body, headers = 500, v2_edge.error_body(f"{type(exc).__name__}: {exc}"), v2_edge.JSON_HEADERS
    await http.send_bytes(send, status, body, headers)
    return True


async def read_v2_request(scope: http.Scope, receive: http.Receive, max_body: int) -> v2.InferPayload:
    body = await http.read_body(receive, max_body)
    return v2_edge.rest_request(body, http.header(scope, b"inference-header-content-length"))


def v2_json(obj: Any) -> rest.Raw:
    return 200, v2.dumps(obj), v2_edge.JSON_HEADERS


def _wrapper_json(obj: Any) -> bytes:
    return json_codec.dumps(obj, wrapper_style=True)


def _answer(answer: SeldonMessage) -> rest.Raw:
    if answer.verbatim is not None:  # a raw method's own dict, as the wrapper answers it
        return answer_status(answer.status), _wrapper_json(answer.verbatim), http.JSON_HEADERS
    payload = json_codec.encode_message(answer)
    payload.setdefault("meta", {})
    return answer_status(answer.status), _wrapper_json(payload), http.JSON_HEADERS


def _feedback_answer(answer: SeldonMessage) -> rest.Raw:
    payload = json_format.MessageToDict(proto_codec.message_to_proto(answer))
    payload.setdefault("meta", {})
    return answer_status(answer.status), _wrapper_json(payload), http.JSON_HEADERS


class MicroserviceApp:
    """ASGI application; one per worker process."""

    def __init__(self, plane: ComponentPlane, *, max_body: int = http.DEFAULT_MAX_BODY) -> None:
        self.plane = plane
        self.max_body = max_body

        def message_op(fn: Callable[[SeldonMessage], Awaitable[SeldonMessage]]) -> Handler:
            async def handle(obj: Any) -> rest.Raw:
                return _answer(await fn(json_codec.decode_request(obj)))

            return handle

        async def feedback(obj: Any) -> rest.Raw:
            return _feedback_answer(await plane.send_feedback(json_codec.decode_feedback(obj)))

        async def aggregate(obj: Any) -> rest.Raw:
            return _answer(await plane.aggregate(json_codec.decode_message_list(obj)))

        predict = message_op(plane.predict)
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
        self._openapi_body: bytes | None = None
        self._span_attributes = {"seldon.model": plane.model_name, "seldon.node": plane.adapter.unit_id or ""}
        self.other = rest.other_paths(
            [
                rest.route("/health/ping", self._ping),
                rest.route("/health/status", self._health_status),
                rest.route("/api/v1.0/health/status", self._health_status),
                rest.route("/metadata", self._metadata),
                rest.route("/api/v1.0/metadata", self._metadata),
                rest.route("/metrics", self._metrics),
                rest.route("/prometheus", self._metrics),
                rest.route("/seldon.json", self._openapi),
                rest.route("/openapi.json", self._openapi),
            ],
            log,
        )

    async def __call__(self, scope: http.Scope, receive: http.Receive, send: http.Send) -> None:
        handler = self.message_routes.get(scope["path"]) if scope["type"] == "http" else None
        if handler is None:
            v2_path = scope["type"] == "http" and scope["path"].startswith("/v2")
            if v2_path and await serve_v2(scope, receive, send, self._v2, log):
                return
            await self.other(scope, receive, send)
            return

        async def handle() -> rest.Raw:
            http.check_method(scope, http.MESSAGE_METHODS)
            body = await http.read_body(receive, self.max_body)
            obj = http.request_json(scope, body)
            if tracing.ON:  # a span continuing the caller's trace
                traceparent = http.header(scope, b"traceparent").decode("latin-1") or None
                operation = f"{self.plane.model_name} {scope['path']}"
                return await tracing.served(operation, traceparent, self._span_attributes, obj, handler(obj))
            return await handler(obj)

        await rest.on_message_path(scope, send, handle, log, dumps=_wrapper_json)

    async def _v2(self, target: v2_edge.Target, scope: http.Scope, receive: http.Receive) -> rest.Raw:
        operation, model, _ = target  # any version is this model (it has one)
        plane = self.plane
        if operation == "live":
            return v2_json({"live": True})
        if operation == "ready":
            return v2_json({"ready": True})  # a worker answers only once its class is loaded
        if operation == "server":
            return v2_json(v2_edge.server_metadata())
        v2_edge.check_model(model, plane.model_name, plane.model_names)
        if operation == "model_ready":
            return v2_json({"name": model, "ready": True})
        if operation == "model":
            return v2_json(v2_edge.model_metadata(model, plane.metadata()))
        request = await read_v2_request(scope, receive, self.max_body)
        work = plane.v2_infer(v2_edge.request_message(request))
        if tracing.ON:  # a span continuing the caller's trace
            traceparent = http.header(scope, b"traceparent").decode("latin-1") or None
            answer = await tracing.served(f"{model} infer", traceparent, self._span_attributes, None, work)
        else:
            answer = await work
        body, headers = v2_edge.rest_answer(v2_edge.answer_payload(answer, request, model), request)
        return 200, body, headers

    async def _ping(self, request: Request) -> Response:
        return rest.text_response(b"pong")

    async def _health_status(self, request: Request) -> Response:
        status, body, _ = _answer(await self.plane.health_status())
        return Response(body, status, media_type=rest.JSON)

    async def _metadata(self, request: Request) -> Response:
        return Response(_wrapper_json(self.plane.metadata()), media_type=rest.JSON)

    async def _metrics(self, request: Request) -> Response:
        body, content_type = self.plane.metrics.render()
        return Response(body, media_type=content_type)

    async def _openapi(self, request: Request) -> Response:
        if self._openapi_body is None:
            self._openapi_body = json_codec.dumps(microservice_openapi(self.plane.model_name))
        return Response(self._openapi_body, media_type=rest.JSON)


def metrics_app(metrics: Metrics, path: str) -> Starlette:
    """What Seldon's wrapper serves on its metrics port: Prometheus at `path` (its operator
    sets /prometheus), nothing else."""

    async def scrape(request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return rest.other_paths([rest.route(path, scrape)], log)
