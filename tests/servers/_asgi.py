"""Drive an ASGI app in-process: one request, the whole answer."""

from __future__ import annotations

from typing import Any

import orjson


class Answer:
    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return orjson.loads(self.body)


async def request(
    app: Any,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[bytes, bytes] | None = None,
    query: bytes = b"",
) -> Answer:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": list((headers or {}).items()),
        "client": ("127.0.0.1", 40000),
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    return Answer(start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:]))


def assert_failure(answer: Answer, status: int, info: str) -> dict[str, Any]:
    """A Seldon FAILURE status body whose info contains `info`, and no traceback."""
    assert answer.status == status, answer.body
    assert answer.headers[b"content-type"] == b"application/json"
    body = answer.json()
    assert set(body) == {"status"}
    assert body["status"]["status"] == "FAILURE" and body["status"]["reason"]
    assert info in body["status"]["info"], body["status"]["info"]
    assert b"Traceback" not in answer.body
    return body["status"]
