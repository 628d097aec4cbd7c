"""One-shot blocking HTTP calls, for readiness checks (the load itself comes from lib.loadgen)."""

from __future__ import annotations

import urllib.error
import urllib.request


def http_request(
    url: str, body: bytes | None = None, content_type: str = "application/json", timeout: float = 2.0
) -> tuple[int, bytes]:
    """(status, body) of a POST of `body`, or of a GET when `body` is None.  An HTTP error status is
    an answer like any other; OSError when there is no answer at all."""
    headers = {"Content-Type": content_type} if body is not None else {}
    method = "GET" if body is None else "POST"
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def get_problem(url: str, timeout: float = 1.0) -> str | None:
    """None when GET `url` answers 200, else why not: a readiness probe for health endpoints."""
    try:
        status, body = http_request(url, timeout=timeout)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if status == 200 else f"HTTP {status}: {body[:200]!r}"
