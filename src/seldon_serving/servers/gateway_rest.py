"""REST edge of the gateway: Seldon's external API for every deployment, engine health,
Prometheus, and the admin API of the local control plane.

The API paths take the raw fast path (`servers.rest`):
- POST /seldon/<dep>/api/v0.1|v1.0/predictions|feedback (Ambassador, the seed)
- POST /seldon/<namespace>/<dep>/api/v0.1|v1.0/predictions|feedback (SeldonClient with namespace)
- POST /api/v0.1|v1.0/predictions|feedback: the deployment named by header `seldon`
  (+ `namespace`), or the only one running (SeldonClient gateway="seldon")
- GET .../api/v1.0/metadata[/<model>]: graph (or one node's model) metadata
The rest are Starlette routes:
- GET /ping /ready /live /pause /unpause /metrics /prometheus /openapi.json
- POST /oauth/token (with the OAuth front end on)
- /admin/deployments[/<namespace>/<name>]: GET, PUT/POST (apply), DELETE
Every error answers `{"status": {...FAILURE...}}` with the error table's HTTP status.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from seldon_serving.engine.plane import DataPlane
from seldon_serving.protocol import json_codec
from seldon_serving.protocol.errors import MethodNotFound, Unauthenticated
from seldon_serving.servers import http, rest
from seldon_serving.servers.metrics import Metrics
from seldon_serving.servers.oauth import OAuthService, bearer_token
from seldon_serving.servers.openapi import gateway_openapi

log = logging.getLogger("seldon_serving.gateway")

API_VERSIONS = frozenset({"v0.1", "v1.0"})
_CORS = (b"access-control-allow-origin", b"*")
_API_HEADERS = [*http.JSON_HEADERS, _CORS]
_EMPTY = b"{}"
_PATH_CACHE_LIMIT = 4096


class Admin(Protocol):
    """The control plane behind /admin (implemented in seldon_serving.deploy)."""

    async def apply(self, body: Any) -> dict[str, Any]: ...

    async def get(self, namespace: str, name: str) -> dict[str, Any]: ...

    async def list(self) -> dict[str, Any]: ...

    async def delete(self, namespace: str, name: str) -> dict[str, Any]: ...

    async def set_paused(self, paused: bool) -> None: ...


# (operation, namespace, deployment, model); deployment None: from the headers / the only one.
Target = tuple[str, str | None, str | None, str]


def parse_api_path(path: str) -> Target | None:
    """Which API operation a path names, or None when it is not an API path."""
    parts = path.split("/")
    if len(parts) < 4 or parts[0] != "":
        return None
    if parts[1] == "seldon":
        # /seldon/<dep>/api/<v>/... or /seldon/<ns>/<dep>/api/<v>/...: try the short form first
        for at in (3, 4):
            if len(parts) > at + 2 and parts[at] == "api" and parts[at + 1] in API_VERSIONS:
                prefix = parts[2:at]
                namespace, name = (None, prefix[0]) if len(prefix) == 1 else (prefix[0], prefix[1])
                return _operation(parts[at + 2 :], namespace, name)
        return None
    if parts[1] == "api" and parts[2] in API_VERSIONS:
        return _operation(parts[3:], None, None)
    return None


def _operation(rest: list[str], namespace: str | None, name: str | None) -> Target | None:
    if not name and name is not None:
        return None
    if len(rest) == 1 and rest[0] in ("predictions", "feedback", "metadata"):
        return rest[0], namespace, name, ""
    if len(rest) == 2 and rest[0] == "metadata" and rest[1]:
        return "metadata", namespace, name, rest[1]
    return None


class GatewayApp:
    """ASGI application; one per worker process."""

    def __init__(
        self,
        plane: DataPlane,
        metrics: Metrics,
        *,
        admin: Admin | None = None,
        remote_admin: bool = False,
        max_body: int = http.DEFAULT_MAX_BODY,
        oauth: OAuthService | None = None,
    ) -> None:
        self.plane = plane
        # With the OAuth front end on, every API call needs a bearer token of its deployment.
        self.oauth = oauth
        self.metrics = metrics
        self.admin = admin
        # An apply names Python classes to import from server paths: by default only a
        # client on this host may do that.
        self.remote_admin = remote_admin
        self.max_body = max_body
        self._paths: dict[str, Target | None] = {}
        self._openapi_body: bytes | None = None
        self._openapi_served: tuple[Any, ...] = ()
        routes = [
            rest.route("/", self._hello),
            rest.route("/ping", self._text(b"pong")),
            rest.route("/live", self._text(b"live")),
            rest.route("/ready", self._ready),
            rest.route("/pause", self._pause),
            rest.route("/unpause", self._unpause),
            rest.route("/metrics", self._metrics),
            rest.route("/prometheus", self._metrics),
            rest.route("/openapi.json", self._openapi),
            rest.route("/seldon.json", self._openapi),
        ]
        if oauth is not None:
            routes.append(rest.route("/oauth/token", self._token, methods=("POST",)))
        if admin is not None:
            routes += [
                rest.route("/admin/deployments", self._admin_list, methods=("GET",)),
                rest.route("/admin/deployments", self._admin_apply, methods=("PUT", "POST")),
                rest.route(
                    "/admin/deployments/{namespace}/{name}", self._admin_one, methods=("GET", "DELETE")
                ),
            ]
        self.other = rest.other_paths(routes, log)

    async def __call__(self, scope: http.Scope, receive: http.Receive, send: http.Send) -> None:
        target = self._target(scope["path"]) if scope["type"] == "http" else None
        if target is None:
            await self.other(scope, receive, send)
            return

        async def handle() -> rest.Raw:
            return await self._api(scope, receive, target)

        await rest.on_message_path(scope, send, handle, log, _API_HEADERS)

    def _target(self, path: str) -> Target | None:
        target = self._paths.get(path, False)
        if target is False:
            target = parse_api_path(path)
            if len(self._paths) < _PATH_CACHE_LIMIT:
                self._paths[path] = target
        return target  # type: ignore[return-value]

    # --- the external API --------------------------------------------------------------------

    async def _api(self, scope: http.Scope, receive: http.Receive, target: Target) -> rest.Raw:
        operation, namespace, name, model = target
        if name is None:  # SeldonClient gateway="seldon": the headers name it, or the only one
            # latin-1 decodes any bytes: a garbled header finds no deployment (404), not a 500
            name = http.header(scope, b"seldon").decode("latin-1") or None
            namespace = http.header(scope, b"namespace").decode("latin-1") or None
        if scope["method"] == "OPTIONS":  # CORS preflight, as Seldon's engine allows any origin
            return 204, b"", _PREFLIGHT_HEADERS
        if self.oauth is not None:
            name, namespace = self._authorize(scope, target, name, namespace)
        if operation == "metadata":
            http.check_method(scope, http.READ_METHODS)
            if model:
                document = await self.plane.model_metadata(name, namespace, model)
            else:
                document = await self.plane.graph_metadata(name, namespace)
            return 200, json_codec.dumps(document), _API_HEADERS
        http.check_method(scope, http.MESSAGE_METHODS)
        obj = http.request_json(scope, await http.read_body(receive, self.max_body))
        if operation == "predictions":
            answer = await self.plane.predict(name, namespace, json_codec.decode_message(obj))
            return rest.answer_raw(answer, _API_HEADERS)
        await self.plane.send_feedback(name, namespace, json_codec.decode_feedback(obj))
        return 200, _EMPTY, _API_HEADERS

    def _authorize(
        self, scope: http.Scope, target: Target, name: str | None, namespace: str | None
    ) -> tuple[str, str]:
        """The deployment a bearer token opens; a token never reaches another deployment."""
        assert self.oauth is not None
        grant = self.oauth.check(bearer_token(http.header(scope, b"authorization").decode("latin-1")))
        named = target[2] is not None  # /seldon/<dep>/... names its deployment in the path
        if (named and name != grant.deployment) or (named and namespace and namespace != grant.namespace):
            raise Unauthenticated(f"this token does not open deployment '{name}'")
        return grant.deployment, grant.namespace

    async def _token(self, request: Request) -> Response:
        assert self.oauth is not None
        body = await rest.read_body(request, self.max_body)
        answer = self.oauth.issue(request.headers.get("authorization", ""), body)
        return rest.json_response(answer)

    # --- engine health and metrics -------------------------------------------------------------

    @staticmethod
    def _text(text: bytes) -> rest.Endpoint:
        async def answer(request: Request) -> Response:
            return rest.text_response(text)

        return answer

    async def _hello(self, request: Request) -> Response:
        return rest.text_response(b"Hello World!!")

    async def _ready(self, request: Request) -> Response:
        why = await self.plane.not_ready()
        if why is None:
            return rest.text_response(b"ready")
        return rest.text_response(f"Service unavailable: {why}", 503)

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

    async def _openapi(self, request: Request) -> Response:
        # The document names the running deployments: rebuilt only when that set changes.
        served = tuple(
            (d.namespace, d.name, tuple(n.name for n in d.primary.root.walk()))
            for d in self.plane.deployments()
        )
        if self._openapi_body is None or self._openapi_served != served:
            self._openapi_body = json_codec.dumps(gateway_openapi(served))
            self._openapi_served = served
        return Response(self._openapi_body, media_type=rest.JSON)

    # --- admin API -----------------------------------------------------------------------------

    def _admin_for(self, request: Request) -> Admin:
        if self.admin is None:
            raise MethodNotFound("this gateway has no control plane")
        if not self.remote_admin and not _is_loopback(request.client):
            raise Unauthenticated(
                "the admin API answers only clients on this host; start `seldon serve --allow-remote-admin` "
                "to manage deployments from elsewhere"
            )
        return self.admin

    async def _admin_list(self, request: Request) -> Response:
        return rest.json_response(await self._admin_for(request).list())

    async def _admin_apply(self, request: Request) -> Response:
        admin = self._admin_for(request)
        body = await rest.read_body(request, self.max_body)
        return rest.json_response(await admin.apply(json_codec.loads(body) if body else None))

    async def _admin_one(self, request: Request) -> Response:
        admin = self._admin_for(request)
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        call = admin.get if request.method == "GET" else admin.delete
        return rest.json_response(await call(namespace, name))


def _is_loopback(client: Any) -> bool:
    if not client:
        return True  # a unix socket or an in-process caller
    host = str(client[0])
    return host == "::1" or host.startswith("127.") or host == "localhost" or host.startswith("::ffff:127.")


_PREFLIGHT_HEADERS = [
    _CORS,
    (b"access-control-allow-methods", b"POST, GET, OPTIONS"),
    (b"access-control-allow-headers", b"content-type, seldon, namespace, x-auth-token"),
]
