"""The admin API of `seldon serve` and who may use it.

The admin API (apply, get, list, delete deployments; pause and unpause the gateway) and the
read-only views (Prometheus at /metrics and /prometheus) are served on a port of their own,
bound to 127.0.0.1 by default (`AdminApp`).  With an admin token (`--admin-token-file`) every
call there needs `Authorization: Bearer <token>`, and the public port answers them too, to the
same token.  No decision rests on the client's address: behind a reverse proxy or a sidecar
every client looks like loopback.

The server keeps only the SHA-256 digest of the token and compares digests in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from seldon_serving.engine.plane import DataPlane
from seldon_serving.protocol import json_codec
from seldon_serving.protocol.errors import MethodNotFound, ServingError, Unauthenticated
from seldon_serving.servers import http, rest
from seldon_serving.servers.metrics import Metrics

log = logging.getLogger("seldon_serving.admin")

DIGEST_PREFIX = "sha256:"
TOKEN_HINT = "send `Authorization: Bearer <token>` (seldon apply/get/delete: --admin-token-file FILE)"


Guard = Callable[[Request], None]  # raises to refuse a request


class AdminTokenError(ServingError):
    """An admin token file the server cannot use."""


class Admin(Protocol):
    """The control plane behind /admin (implemented in seldon_serving.deploy)."""

    async def apply(self, body: Any) -> dict[str, Any]: ...

    async def get(self, namespace: str, name: str) -> dict[str, Any]: ...

    async def list(self) -> dict[str, Any]: ...

    async def delete(self, namespace: str, name: str) -> dict[str, Any]: ...

    async def set_paused(self, paused: bool) -> None: ...


def token_digest(token: str | bytes) -> bytes:
    return hashlib.sha256(token.encode() if isinstance(token, str) else token).digest()


def read_token_file(path: Path) -> bytes:
    """The SHA-256 digest of the admin token `path` holds: the token itself, or `sha256:<hex>`
    of it (so that the server's copy need not be the secret)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AdminTokenError(
            f"admin token file {path} does not exist: make one with `seldon admin-token {path}`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise AdminTokenError(f"cannot read admin token file {path}: {why}") from None
    if not stat.S_ISREG(mode):
        raise AdminTokenError(f"admin token file {path} is not a regular file")
    if mode & 0o077:
        raise AdminTokenError(
            f"admin token file {path} can be read by other users (mode {stat.S_IMODE(mode):04o}): "
            f"run `chmod 600 {path}`"
        )
    value = text.strip()
    if not value:
        raise AdminTokenError(
            f"admin token file {path} is empty: write a token into it (`seldon admin-token {path}`)"
        )
    if len(value.split()) != 1:
        raise AdminTokenError(f"admin token file {path} holds more than one word: it must hold one token")
    if value.startswith(DIGEST_PREFIX):
        try:
            digest = bytes.fromhex(value[len(DIGEST_PREFIX) :])
        except ValueError:
            digest = b""
        if len(digest) != hashlib.sha256().digest_size:
            raise AdminTokenError(
                f"admin token file {path} holds `{DIGEST_PREFIX}` without the 64 hex digits of a digest"
            )
        return digest
    return token_digest(value)


@dataclass(frozen=True, slots=True)
class AdminAccess:
    """Who may use the admin API and the read-only views, on which port."""

    token: bytes | None = field(default=None, repr=False)  # SHA-256 of the admin token
    admin_address: str | None = None  # host:port of the admin port; None: no admin port
    public_metrics: bool = False  # Prometheus on the public port without the token

    def check_token(self, request: Request) -> None:
        """Refuse (401) a request without the admin token; no-op when there is no token."""
        if self.token is None:
            return
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated(f"the admin API needs the admin token: {TOKEN_HINT}")
        # latin-1 gives back the header's bytes as sent; digests of equal length, compared in
        # constant time, say nothing about the token through timing.
        sent = token_digest(value.strip().encode("latin-1"))
        if not hmac.compare_digest(sent, self.token):
            raise Unauthenticated("the admin token sent is not this server's admin token")

    def public_admin(self, request: Request) -> None:
        """The rule of the public port for /admin, /pause and /unpause: the token, or nothing."""
        if self.token is None:
            raise MethodNotFound(f"the admin API is not served on this port: {self._elsewhere()}")
        self.check_token(request)

    def public_read(self, request: Request) -> None:
        """The rule of the public port for /metrics and /prometheus."""
        if self.public_metrics:
            return
        if self.token is None:
            raise MethodNotFound(
                f"Prometheus metrics are not served on this port: {self._elsewhere()}, "
                "or start `seldon serve --public-metrics` to serve them here"
            )
        self.check_token(request)

    def _elsewhere(self) -> str:
        with_token = "start `seldon serve --admin-token-file FILE` to use it here with a token"
        if self.admin_address is None:
            return f"this server has no admin port (start it with --admin-port PORT), or {with_token}"
        return f"it is on the admin port, {self.admin_address}, or {with_token}"


class AdminRoutes:
    """The admin API's handlers, shared by the admin port and the public port; `guard` runs
    before each (it raises to refuse)."""

    def __init__(
        self,
        admin: Admin | None,
        plane: DataPlane,
        metrics: Metrics,
        max_body: int,
    ) -> None:
        self.admin = admin
        self.plane = plane
        self.metrics = metrics
        self.max_body = max_body

    def deployments(self, guard: Guard | None) -> list[Route]:
        """/admin/deployments[/<namespace>/<name>] (only with a control plane)."""
        if self.admin is None:
            return []
        return [
            rest.route("/admin/deployments", _guarded(guard, self._list), methods=("GET",)),
            rest.route("/admin/deployments", _guarded(guard, self._apply), methods=("PUT", "POST")),
            rest.route(
                "/admin/deployments/{namespace}/{name}",
                _guarded(guard, self._one),
                methods=("GET", "DELETE"),
            ),
        ]

    def rotation(self, guard: Guard | None) -> list[Route]:
        """/pause and /unpause."""
        return [
            rest.route("/pause", _guarded(guard, self._pause)),
            rest.route("/unpause", _guarded(guard, self._unpause)),
        ]

    def views(self, guard: Guard | None) -> list[Route]:
        """The read-only views: Prometheus at /metrics and /prometheus."""
        endpoint = _guarded(guard, self._metrics)
        return [rest.route("/metrics", endpoint), rest.route("/prometheus", endpoint)]

    def _control(self) -> Admin:
        if self.admin is None:
            raise MethodNotFound("this gateway has no control plane")
        return self.admin

    async def _list(self, request: Request) -> Response:
        return rest.json_response(await self._control().list())

    async def _apply(self, request: Request) -> Response:
        body = await rest.read_body(request, self.max_body)
        return rest.json_response(await self._control().apply(json_codec.loads(body) if body else None))

    async def _one(self, request: Request) -> Response:
        admin = self._control()
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        call = admin.get if request.method == "GET" else admin.delete
        return rest.json_response(await call(namespace, name))

    async def _pause(self, request: Request) -> Response:
        await self._set_paused(True)
        return rest.text_response(b"paused")

    async def _unpause(self, request: Request) -> Response:
        await self._set_paused(False)
        return rest.text_response(b"unpaused")

    async def _set_paused(self, paused: bool) -> None:
        if self.admin is not None:
            await self.admin.set_paused(paused)  # every worker leaves (or rejoins) rotation
        else:
            self.plane.paused = paused

    async def _metrics(self, request: Request) -> Response:
        body, content_type = self.metrics.render()
        return Response(body, media_type=content_type)


def _guarded(guard: Guard | None, endpoint: rest.Endpoint) -> rest.Endpoint:
    if guard is None:
        return endpoint

    async def checked(request: Request) -> Response:
        guard(request)
        return await endpoint(request)

    return checked


class AdminApp:
    """The ASGI app of the admin port: the admin API, /pause, /unpause, the read-only views and
    /ping; with an admin token, everything but /ping needs it."""

    def __init__(self, routes: AdminRoutes, access: AdminAccess) -> None:
        guard = access.check_token if access.token is not None else None
        served: Sequence[BaseRoute] = [
            rest.route("/ping", _pong),
            *routes.deployments(guard),
            *routes.rotation(guard),
            *routes.views(guard),
        ]
        self.app = rest.other_paths(served, log)

    async def __call__(self, scope: http.Scope, receive: http.Receive, send: http.Send) -> None:
        await self.app(scope, receive, send)


async def _pong(request: Request) -> Response:
    return rest.text_response(b"pong")
