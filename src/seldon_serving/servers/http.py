"""Minimal ASGI plumbing shared by the REST edges: read a bounded body, find the
Seldon JSON in it (raw body, form field `json=`, query `?json=`, multipart), send
an answer.  Raw ASGI rather than a framework: this is the hot path, and the
edges only need a path table.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from seldon_serving.protocol import json_codec
from seldon_serving.protocol.errors import BadRequest, MethodNotAllowed, RequestTooLarge, SeldonError

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

DEFAULT_MAX_BODY = 4 * 1024 * 1024  # the seed's grpcMaxMessageSize, used for REST too

JSON_HEADERS = [(b"content-type", b"application/json")]
TEXT_HEADERS = [(b"content-type", b"text/plain; charset=utf-8")]


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await receive()
        if event["type"] == "http.disconnect":
            raise BadRequest("client disconnected before sending the whole body")
        chunk = event.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise RequestTooLarge(f"request body is larger than the limit of {limit} bytes")
            chunks.append(chunk)
        if not event.get("more_body", False):
            break
    if len(chunks) == 1:
        return chunks[0]
    return b"".join(chunks)


def header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return b""


def _form_json(fields: dict[str, list[str]], where: str) -> Any:
    values = fields.get("json")
    if not values:
        raise BadRequest(f"Can't find JSON in data: the {where} has no 'json' field")
    return json_codec.loads(values[0])


def _multipart_json(body: bytes, content_type: bytes) -> Any:
    """Seldon's multipart convention: each part is one top-level key of the message;
    file parts named binData are base64-encoded, other parts are JSON (strData is text)."""
    # python-multipart, imported only for this rare path
    from python_multipart import parse_form
    from python_multipart.exceptions import FormParserError

    parts: list[tuple[str, bytes, bool]] = []  # (name, content, sent as a file)

    def on_field(field: Any) -> None:
        parts.append((_part_name(field.field_name), field.value or b"", False))

    def on_file(file: Any) -> None:
        file.file_object.seek(0)
        parts.append((_part_name(file.field_name), file.file_object.read(), True))

    headers = {"Content-Type": content_type, "Content-Length": str(len(body)).encode()}
    try:
        parse_form(headers, io.BytesIO(body), on_field, on_file)
    except (FormParserError, ValueError) as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from None
    message: dict[str, Any] = {}
    for name, data, is_file in parts:
        if not name:
            continue
        if name == "binData":
            if is_file:
                message[name] = base64.b64encode(data).decode()
            else:
                try:
                    message[name] = data.decode()  # base64 text, checked by the codec
                except UnicodeDecodeError:
                    raise BadRequest("multipart field binData must be base64 text or a file") from None
        elif name == "strData" or is_file:
            message[name] = data.decode("utf-8", errors="replace")
        else:
            message[name] = json_codec.loads(data)
    return message


def _part_name(raw: bytes | str | None) -> str:
    # Part names need not be UTF-8; latin-1 reads any bytes (an unknown name is then ignored).
    if isinstance(raw, bytes):
        return raw.decode("latin-1")
    return raw or ""


def request_json(scope: Scope, body: bytes) -> Any:
    """The Seldon message of a request, wherever Seldon's wrapper would look for it."""
    content_type = header(scope, b"content-type")
    if body:
        if content_type.startswith(b"application/x-www-form-urlencoded") and not body.startswith(b"{"):
            # `curl -d '{...}'` sends JSON labelled as a form: read it as JSON, like the user meant.
            return _form_json(parse_qs(body.decode("latin-1")), "form")
        if content_type.startswith(b"multipart/form-data"):
            return _multipart_json(body, content_type)
        return json_codec.loads(body)
    query = scope.get("query_string", b"")
    if query:
        return _form_json(parse_qs(query.decode("latin-1")), "query string")
    raise BadRequest("Can't find JSON in data")


async def send_bytes(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    # With a length the server sends the body as it is, not chunked (as Seldon's wrapper does).
    sized = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": sized})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, obj: Any) -> None:
    await send_bytes(send, status, json_codec.dumps(obj), JSON_HEADERS)


def error_headers(error: SeldonError, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers`, plus the Allow header HTTP asks of a 405."""
    allow = getattr(error, "allow", "")
    return [*headers, (b"allow", allow.encode())] if allow else headers


async def send_error(send: Send, error: SeldonError) -> None:
    body = json_codec.dumps(error.body())
    await send_bytes(send, error.http_status, body, error_headers(error, JSON_HEADERS))


# Methods each kind of path takes: message paths read a body (POST) or `?json=` (GET), as
# Seldon's wrapper does; the others only answer GET (HEAD is GET without the body).
MESSAGE_METHODS = frozenset({"POST", "GET"})
READ_METHODS = frozenset({"GET", "HEAD"})


def check_method(scope: Scope, allowed: frozenset[str]) -> None:
    method = scope["method"]
    if method not in allowed:
        allow = ", ".join(sorted(allowed))
        raise MethodNotAllowed(f"{method} is not allowed on {scope['path']}; use {allow}", allow=allow)


async def lifespan(receive: Receive, send: Send) -> None:
    """Answer the ASGI lifespan protocol (our apps have nothing to start or stop there)."""
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
