"""What both REST edges (microservice and gateway) share.

Seldon messages (predictions, feedback, a component's methods) take a raw ASGI fast path:
read a bounded body, find the Seldon JSON in it, call the data plane, answer with the status
the answer carries.  Everything else (health, metadata, metrics, OpenAPI, admin, OAuth) is a
small Starlette app: routing, methods (405 with an Allow header) and HEAD come from the
library.  On both paths every error answers the one error table's FAILURE body.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from seldon_serving.protocol import json_codec
from seldon_serving.protocol.errors import (
    MethodNotAllowed,
    MethodNotFound,
    SeldonError,
    UserCodeError,
    answer_status,
    status_error,
)
from seldon_serving.protocol.message import SeldonMessage
from seldon_serving.servers import http
from seldon_serving.servers.logs import log_failure

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"

Endpoint = Callable[[Request], Awaitable[Response]]


def failure_response(error: SeldonError) -> Response:
    """The FAILURE body of `error` with its HTTP status (and Allow for a 405)."""
    headers = {"allow": error.allow} if isinstance(error, MethodNotAllowed) and error.allow else None
    return Response(json_codec.dumps(error.body()), error.http_status, headers, media_type=JSON)


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(json_codec.dumps(obj), status, media_type=JSON)


def text_response(text: str | bytes, status: int = 200) -> Response:
    return Response(text, status, media_type=TEXT)


async def read_body(request: Request, limit: int) -> bytes:
    """The body of a request, refused (413) past `limit` bytes without reading the rest."""
    return await http.read_body(request.receive, limit)


def route(path: str, endpoint: Endpoint, methods: Sequence[str] = ("GET",)) -> Route:
    """A Starlette route (GET routes take HEAD too)."""
    return Route(path, endpoint, methods=list(methods))


def other_paths(routes: Sequence[BaseRoute], log: logging.Logger) -> Starlette:
    """The Starlette app behind everything that is not a Seldon message."""

    async def seldon_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SeldonError)
        log_failure(log, f"{request.method} {request.url.path}", exc)
        return failure_response(exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        path, method = request.url.path, request.method
        error: SeldonError
        if exc.status_code == 404:
            error = MethodNotFound(f"no such path: {path}")
        elif exc.status_code == 405:
            # Sorted, so the header does not depend on the order Starlette keeps the methods in.
            allow = ", ".join(sorted(m.strip() for m in (exc.headers or {}).get("Allow", "").split(",")))
            error = MethodNotAllowed(f"{method} is not allowed on {path}; use {allow}", allow=allow)
        else:
            error = status_error(exc.status_code, "Bad request", str(exc.detail))
        return failure_response(error)

    async def bug(request: Request, exc: Exception) -> Response:
        log.error("unexpected error on %s", request.url.path, exc_info=exc)
        return failure_response(UserCodeError(f"{type(exc).__name__}: {exc}"))

    return Starlette(
        routes=list(routes),
        exception_handlers={SeldonError: seldon_error, HTTPException: http_error, Exception: bug},
    )


Raw = tuple[int, bytes, list[tuple[bytes, bytes]]]
"""An answer of the fast path: status, body, headers (sent as they are: no framework)."""


def answer_raw(answer: SeldonMessage, headers: list[tuple[bytes, bytes]] = http.JSON_HEADERS) -> Raw:
    """A Seldon answer, with the HTTP status its own status says (`protocol.errors.answer_status`)."""
    return answer_status(answer.status), json_codec.dumps(json_codec.encode_message(answer)), headers


async def on_message_path(
    scope: http.Scope,
    send: http.Send,
    handle: Callable[[], Awaitable[Raw]],
    log: logging.Logger,
    headers: list[tuple[bytes, bytes]] = http.JSON_HEADERS,
    dumps: Callable[[Any], bytes] = json_codec.dumps,
) -> None:
    """Run the handler of a message path; its errors answer FAILURE bodies (with `headers`,
    written by `dumps`), never a trace."""
    try:
        status, body, answer_headers = await handle()
    except SeldonError as error:
        log_failure(log, f"{scope['method']} {scope['path']}", error)
        status, body, answer_headers = error.http_status, dumps(error.body()), headers
        if isinstance(error, MethodNotAllowed) and error.allow:
            answer_headers = [*headers, (b"allow", error.allow.encode())]
    except Exception as exc:  # a bug of ours: answer in Seldon's shape, log where it came from
        log.exception("unexpected error on %s", scope["path"])
        bug = UserCodeError(f"{type(exc).__name__}: {exc}")
        status, body, answer_headers = 500, dumps(bug.body()), headers
    await http.send_bytes(send, status, body, answer_headers)
