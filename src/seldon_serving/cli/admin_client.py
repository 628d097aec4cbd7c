"""The CLI's client of a running gateway's admin API (stdlib only: the CLI must start fast)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from seldon_serving.cli.errors import CliError

SERVER_ENV = "SELDON_SERVER"
DEFAULT_SERVER = "http://127.0.0.1:8003"
TIMEOUT = 120.0  # an apply waits until every worker has built the deployment


def server_url(given: str | None) -> str:
    url = given or os.environ.get(SERVER_ENV) or DEFAULT_SERVER
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


class AdminClient:
    def __init__(self, server: str | None) -> None:
        self.server = server_url(server)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.server + path,
            data=data,
            method=method,
            headers={"content-type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise CliError(_error_sentence(exc)) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CliError(
                f"no Seldon Serving server answers at {self.server} ({reason}); "
                "start one with `seldon serve` or point --server at it"
            ) from None


def _error_sentence(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read())
    except (ValueError, OSError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("status"), dict):
        info = body["status"].get("info")
        if info:
            return str(info)
    if exc.code == 404:
        return f"the server at {exc.url} has no admin API (is it a `seldon serve` gateway?)"
    return f"the server answered HTTP {exc.code} {exc.reason}"
