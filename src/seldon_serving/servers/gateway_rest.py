"""REST edge of the gateway: Seldon's external API for every deployment, engine health,
Prometheus, and the admin API of the local control plane.

The API paths take the raw fast path (`servers.rest`):
- POST /seldon/<dep>/api/v0.1|v1.0/predictions|feedback (Ambassador, the seed)
- POST /seldon/<namespace>/<dep>/api/v0.1|v1.0/predictions|feedback (SeldonClient with namespace)
- POST /api/v0.1|v1.0/predictions|feedback: the deployment named by header `seldon`
  (+ `namespace`), or the only one running (SeldonClient gateway="seldon")
- GET .../api/v1.0/metadata[/<model>]: graph (or one node's model) metadata
The Open Inference Protocol (V2) beside it (`/v2/...`, `/seldon/<dep>/v2/...`,
`/seldon/<namespace>/<dep>/v2/...`): the model is the deployment (header `namespace` picks
the namespace), and an inference goes through its whole graph; errors are `{"error": ...}`.
The rest are Starlette routes:
- GET /ping /ready /live /openapi.json
- GET /pause /unpause /metrics /prometheus: public on `seldon engine`; on `seldon serve` only with
  the admin token (metrics also with --public-metrics): they are on its admin port (`servers.admin`)
- POST /oauth/token (with the OAuth front end on)
- /admin/deployments[/<namespace>/<name>]: GET, PUT/POST (apply), DELETE, only with the admin token
- GET /dashboard[/...]: the live dashboard (`servers.dashboard`; `seldon serve` only)
Every error answers `{"status": {...FAILURE...}}` with the error table's HTTP status.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from seldon_serving.engine import tracing
from seldon_serving.engine.plane import DataPlane
from seldon_serving.protocol import json_codec, v2, v2_edge
from seldon_serving.protocol.errors import Unauthenticated
from seldon_serving.servers import http, rest
from seldon_serving.servers.admin import Admin, AdminAccess, AdminRoutes
from seldon_serving.servers.dashboard import Dashboard
from seldon_serving.servers.metrics import Metrics
from seldon_serving.servers.microservice_rest import read_v2_request, serve_v2, v2_json
from seldon_serving.servers.oauth import OAuthService, bearer_token
from seldon_serving.servers.openapi import gateway_openapi

log = logging.getLogger("seldon_serving.gateway")

API_VERSIONS = frozenset({"v0.1", "v1.0"})
_CORS = (b"access-control-allow-origin", b"*")
_API_HEADERS = [*http.JSON_HEADERS, _CORS]
_EMPTY = b"{}"
_PATH_CACHE_LIMIT = 4096


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


def split_v2_path(path: str) -> tuple[str | None, str | None, str] | None:
    """(namespace, deployment, the /v2/... rest) of a V2 path, the first two None when the path
    does not name them (/v2/...); None when it is no V2 path."""
    if path.startswith("/v2"):
        return None, None, path
    parts = path.split("/")
    if len(parts) > 3 and parts[1] == "seldon":
        if parts[3] == "v2" and parts[2]:
            return None, parts[2], "/" + "/".join(parts[3:])
        if len(parts) > 4 and parts[4] == "v2" and parts[2] and parts[3]:
            return parts[2], parts[3], "/" + "/".join(parts[4:])
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
        access: AdminAccess | None = None,
        max_body: int = http.DEFAULT_MAX_BODY,
        oauth: OAuthService | None = None,
        dashboard: Dashboard | None = None,
    ) -> None:
        self.plane = plane
        # With the OAuth front end on, every API call needs a bearer token of its deployment.
        self.oauth = oauth
        self.metrics = metrics
        self.admin = admin
        self.max_body = max_body
        self._paths: dict[str, Target | None] = {}
        self._openapi_body: bytes | None = None
        self._openapi_served: tuple[Any, ...] = ()
        routes = [
            rest.route("/", self._hello),
            rest.route("/ping", self._text(b"pong")),
            rest.route("/live", self._text(b"live")),
            rest.route("/ready", self._ready),
            rest.route("/openapi.json", self._openapi),
            rest.route("/seldon.json", self._openapi),
        ]
        # `access` None (`seldon engine`): pause and metrics are public, as Seldon's engine has
        # them; with a control plane, the admin API answers here only to the admin token (an
        # apply names Python classes to import: whoever applies runs code on this host).
        admin_routes = AdminRoutes(admin, plane, metrics, max_body)
        admin_only = (access or AdminAccess()).public_admin
        routes += admin_routes.rotation(access.public_admin if access is not None else None)
        routes += admin_routes.views(access.public_read if access is not None else None)
        routes += admin_routes.deployments(admin_only)
        if oauth is not None:
            routes.append(rest.route("/oauth/token", self._token, methods=("POST",)))
        if dashboard is not None:
            routes += dashboard.routes()
        self.other = rest.other_paths(routes, log)

    async def __call__(self, scope: http.Scope, receive: http.Receive, send: http.Send) -> None:
        target = self._target(scope["path"]) if scope["type"] == "http" else None
        if target is None:
            v2_path = split_v2_path(scope["path"]) if scope["type"] == "http" else None
            if v2_path is not None:
                namespace, name, rest_path = v2_path
                v2_scope = {**scope, "path": rest_path}

                async def handle_v2(target: v2_edge.Target, _: http.Scope, receive: http.Receive) -> rest.Raw:
                    return await self._v2(target, scope, receive, namespace, name)

                if await serve_v2(v2_scope, receive, send, handle_v2, log):
                    return
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
        if tracing.ON:
            tracing.INCOMING.set(http.header(scope, b"traceparent").decode("latin-1") or None)
        if operation == "predictions":
            answer = await self.plane.predict(name, namespace, json_codec.decode_message(obj))
            return rest.answer_raw(answer, _API_HEADERS)
        await self.plane.send_feedback(name, namespace, json_codec.decode_feedback(obj))
        return 200, _EMPTY, _API_HEADERS

    async def _v2(
        self,
        target: v2_edge.Target,
        scope: http.Scope,
        receive: http.Receive,
        namespace: str | None,
        name: str | None,
    ) -> rest.Raw:
        """A V2 call; `name` (and `namespace`) when the path named the deployment."""
        operation, model, _ = target  # a deployment has one version: any version is it
        plane = self.plane
        if operation == "live":
            return v2_json({"live": True})
        if operation == "server":
            return v2_json(v2_edge.server_metadata())
        if operation == "ready":
            why = await plane.not_ready()
            if why is None:
                return v2_json({"ready": True})
            return 400, v2.dumps({"ready": False, "error": f"not ready: {why}"}), v2_edge.JSON_HEADERS
        if name is not None and model != name:
            raise v2_edge.ModelNotFound(
                f"the path names deployment {v2.quote(name)} but model {v2.quote(model)}"
            )
        if namespace is None:
            namespace = http.header(scope, b"namespace").decode("latin-1") or None
        if self.oauth is not None:
            name, namespace = self._authorize(scope, ("predictions", namespace, name, ""), model, namespace)
            if model != name:
                raise Unauthenticated(f"this token does not open deployment '{model}'")
        deployment = plane.find(model, namespace)
        if operation == "model_ready":
            why = plane.not_ready_reason(deployment.namespace, deployment.name)
            if why is None and not plane.paused:
                return v2_json({"name": model, "ready": True})
            reason = why or "paused"
            return (
                400,
                v2.dumps({"name": model, "ready": False, "error": f"not ready: {reason}"}),
                v2_edge.JSON_HEADERS,
            )
        if operation == "model":
            document = await plane.graph_metadata(deployment.name, deployment.namespace)
            return v2_json(v2_edge.model_metadata(model, {**document, "versions": []}))
        request = await read_v2_request(scope, receive, self.max_body)
        if tracing.ON:
            tracing.INCOMING.set(http.header(scope, b"traceparent").decode("latin-1") or None)
        answer = await plane.predict(deployment.name, deployment.namespace, v2_edge.request_message(request))
        body, headers = v2_edge.rest_answer(v2_edge.answer_payload(answer, request, model), request)
        return 200, body, [*headers, _CORS]

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


_PREFLIGHT_HEADERS = [
    _CORS,
    (b"access-control-allow-methods", b"POST, GET, OPTIONS"),
    (b"access-control-allow-headers", b"content-type, seldon, namespace, x-auth-token"),
]
