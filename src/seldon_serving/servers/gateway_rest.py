"""REST edge of the gateway: Seldon's external API for every deployment, engine health,
Prometheus, and the admin API of the local control plane.

Paths (raw ASGI, no framework on the hot path):
- POST /seldon/<dep>/api/v0.1|v1.0/predictions|feedback (Ambassador, the seed)
- POST /seldon/<namespace>/<dep>/api/v0.1|v1.0/predictions|feedback (SeldonClient with namespace)
- POST /api/v0.1|v1.0/predictions|feedback: the deployment named by header `seldon`
  (+ `namespace`), or the only one running (SeldonClient gateway="seldon")
- GET .../api/v1.0/metadata[/<model>]: graph (or one node's model) metadata
- GET /ping /ready /live /pause /unpause /metrics /prometheus /openapi.json
- /admin/deployments[/<namespace>/<name>]: GET, PUT/POST (apply), DELETE
Every error answers `{"status": {...FAILURE...}}` with the error table's HTTP status.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from seldon_serving.engine.plane import DataPlane
from seldon_serving.protocol import json_codec
from seldon_serving.protocol.errors import (
    BadRequest,
    MethodNotAllowed,
    MethodNotFound,
    SeldonError,
    Unauthenticated,
    UserCodeError,
)
from seldon_serving.protocol.message import SeldonMessage
from seldon_serving.servers import http
from seldon_serving.servers.metrics import Metrics
from seldon_serving.servers.oauth import OAuthService, bearer_token
from seldon_serving.servers.openapi import ERRORS, document, get_operation, post_operation

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
        self.get_routes: dict[str, Callable[[], Awaitable[tuple[int, bytes, list]]]] = {
            "/": self._hello,
            "/ping": self._ping,
            "/live": self._live,
            "/ready": self._ready,
            "/pause": self._pause,
            "/unpause": self._unpause,
            "/metrics": self._metrics,
            "/prometheus": self._metrics,
            "/openapi.json": self._openapi,
            "/seldon.json": self._openapi,
        }
        self._openapi_body: bytes | None = None
        self._openapi_served: tuple[Any, ...] = ()

    async def __call__(self, scope: http.Scope, receive: http.Receive, send: http.Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await http.lifespan(receive, send)
            return
        path: str = scope["path"]
        try:
            target = self._paths.get(path, False)
            if target is False:
                target = parse_api_path(path)
                if len(self._paths) < _PATH_CACHE_LIMIT:
                    self._paths[path] = target
            if target is not None:
                await self._api(scope, receive, send, target)  # type: ignore[arg-type]
                return
            getter = self.get_routes.get(path)
            if getter is not None:
                http.check_method(scope, http.READ_METHODS)
                status, body, headers = await getter()
                await http.send_bytes(send, status, body, headers)
                return
            if path == "/oauth/token" and self.oauth is not None:
                await self._token(scope, receive, send)
                return
            if path == "/admin/deployments" or path.startswith("/admin/deployments/"):
                await self._admin(scope, receive, send, path)
                return
            raise MethodNotFound(f"no such path: {path}")
        except SeldonError as error:
            if error.http_status >= 500:
                log.error("%s %s: %s", scope["method"], path, error.info)
            body = json_codec.dumps(error.body())
            await http.send_bytes(send, error.http_status, body, http.error_headers(error, _API_HEADERS))
        except Exception as exc:  # a bug of ours: answer in Seldon's shape, never leak a trace
            log.exception("unexpected error on %s", path)
            error = UserCodeError(f"{type(exc).__name__}: {exc}")
            await http.send_bytes(send, 500, json_codec.dumps(error.body()), _API_HEADERS)

    # --- the external API --------------------------------------------------------------------

    async def _api(self, scope: http.Scope, receive: http.Receive, send: http.Send, target: Target) -> None:
        operation, namespace, name, model = target
        method = scope["method"]
        if name is None:  # SeldonClient gateway="seldon": the headers name it, or the only one
            # latin-1 decodes any bytes: a garbled header finds no deployment (404), not a 500
            name = http.header(scope, b"seldon").decode("latin-1") or None
            namespace = http.header(scope, b"namespace").decode("latin-1") or None
        if method == "OPTIONS":  # CORS preflight, as Seldon's engine allows any origin
            await http.send_bytes(send, 204, b"", _preflight_headers())
            return
        if self.oauth is not None:
            name, namespace = self._authorize(scope, target, name, namespace)
        if operation == "metadata":
            http.check_method(scope, http.READ_METHODS)
            if model:
                document = await self.plane.model_metadata(name, namespace, model)
            else:
                document = await self.plane.graph_metadata(name, namespace)
            await http.send_bytes(send, 200, json_codec.dumps(document), _API_HEADERS)
            return
        http.check_method(scope, http.MESSAGE_METHODS)
        body = await http.read_body(receive, self.max_body)
        obj = http.request_json(scope, body)
        if operation == "predictions":
            answer = await self.plane.predict(name, namespace, json_codec.decode_message(obj))
            payload = json_codec.dumps(json_codec.encode_message(answer))
            await http.send_bytes(send, _answer_status(answer), payload, _API_HEADERS)
        else:
            await self.plane.send_feedback(name, namespace, json_codec.decode_feedback(obj))
            await http.send_bytes(send, 200, _EMPTY, _API_HEADERS)

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

    async def _token(self, scope: http.Scope, receive: http.Receive, send: http.Send) -> None:
        assert self.oauth is not None
        if scope["method"] != "POST":
            raise MethodNotAllowed("use POST /oauth/token", allow="POST")
        body = await http.read_body(receive, self.max_body)
        answer = self.oauth.issue(http.header(scope, b"authorization").decode("latin-1"), body)
        await http.send_json(send, 200, answer)

    # --- engine health and metrics -------------------------------------------------------------

    async def _hello(self) -> tuple[int, bytes, list]:
        return 200, b"Hello World!!", http.TEXT_HEADERS

    async def _ping(self) -> tuple[int, bytes, list]:
        return 200, b"pong", http.TEXT_HEADERS

    async def _live(self) -> tuple[int, bytes, list]:
        return 200, b"live", http.TEXT_HEADERS

    async def _ready(self) -> tuple[int, bytes, list]:
        why = await self.plane.not_ready()
        if why is None:
            return 200, b"ready", http.TEXT_HEADERS
        return 503, f"Service unavailable: {why}".encode(), http.TEXT_HEADERS

    async def _pause(self) -> tuple[int, bytes, list]:
        await self._set_paused(True)
        return 200, b"paused", http.TEXT_HEADERS

    async def _unpause(self) -> tuple[int, bytes, list]:
        await self._set_paused(False)
        return 200, b"unpaused", http.TEXT_HEADERS

    async def _set_paused(self, paused: bool) -> None:
        if self.admin is not None:
            await self.admin.set_paused(paused)  # every worker leaves (or rejoins) rotation
        else:
            self.plane.paused = paused

    async def _metrics(self) -> tuple[int, bytes, list]:
        body, content_type = self.metrics.render()
        return 200, body, [(b"content-type", content_type.encode())]

    async def _openapi(self) -> tuple[int, bytes, list]:
        # The document names the running deployments: rebuilt only when that set changes.
        served = tuple(
            (d.namespace, d.name, tuple(n.name for n in d.primary.root.walk()))
            for d in self.plane.deployments()
        )
        if self._openapi_body is None or self._openapi_served != served:
            self._openapi_body = json_codec.dumps(gateway_openapi(served))
            self._openapi_served = served
        return 200, self._openapi_body, http.JSON_HEADERS

    # --- admin API -----------------------------------------------------------------------------

    async def _admin(self, scope: http.Scope, receive: http.Receive, send: http.Send, path: str) -> None:
        if self.admin is None:
            raise MethodNotFound("this gateway has no control plane")
        if not self.remote_admin and not _is_loopback(scope.get("client")):
            raise Unauthenticated(
                "the admin API answers only clients on this host; start `seldon serve --allow-remote-admin` "
                "to manage deployments from elsewhere"
            )
        method = scope["method"]
        rest = [p for p in path.removeprefix("/admin/deployments").split("/") if p]
        if method in ("PUT", "POST") and not rest:
            body = await http.read_body(receive, self.max_body)
            result = await self.admin.apply(json_codec.loads(body) if body else None)
        elif method == "GET" and not rest:
            result = await self.admin.list()
        elif method in ("GET", "DELETE") and len(rest) == 2:
            call = self.admin.get if method == "GET" else self.admin.delete
            result = await call(rest[0], rest[1])
        else:
            raise BadRequest(
                f"{method} {path} is not an admin operation: use GET|PUT /admin/deployments, "
                "GET|DELETE /admin/deployments/<namespace>/<name>"
            )
        await http.send_json(send, 200, result)


def _is_loopback(client: Any) -> bool:
    if not client:
        return True  # a unix socket or an in-process caller
    host = str(client[0])
    return host == "::1" or host.startswith("127.") or host == "localhost" or host.startswith("::ffff:127.")


def _answer_status(answer: SeldonMessage) -> int:
    """A graph answer carrying a FAILURE status (a raw component said so) is not a 200."""
    status = answer.status
    if status and status.get("status") in ("FAILURE", 1):
        code = status.get("code")
        return code if isinstance(code, int) and 400 <= code < 600 else 500
    return 200


def _preflight_headers() -> list[tuple[bytes, bytes]]:
    return [
        _CORS,
        (b"access-control-allow-methods", b"POST, GET, OPTIONS"),
        (b"access-control-allow-headers", b"content-type, seldon, namespace, x-auth-token"),
    ]


def gateway_openapi(served: Iterable[tuple[str, str, Iterable[str]]] = ()) -> dict[str, Any]:
    """The gateway's document; `served` is (namespace, name, node names) of each running
    deployment, given as enums of the path parameters so a schema-driven client (or fuzzer)
    reaches the data plane and not only 404s."""
    served = list(served)
    names = sorted({name for _, name, _ in served})
    namespaces = sorted({namespace for namespace, _, _ in served})
    nodes = sorted({node for _, _, graph in served for node in graph})

    def param(name: str, where: str, values: list[str], description: str) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "minLength": 1}
        if values:
            schema["enum"] = values
        return {
            "name": name,
            "in": where,
            "required": where == "path",
            "schema": schema,
            "description": description,
        }

    deployment = param("deployment", "path", names, "a running SeldonDeployment")
    namespace = param("namespace", "path", namespaces, "its namespace")
    model = param("model", "path", nodes, "a node of the deployment's graph")
    headers = [
        param("seldon", "header", names, "the deployment (needed when several are running)"),
        param("namespace", "header", namespaces, "its namespace"),
    ]
    errors = ("400", "401", "404", "405", "413", "500", "503", "504")
    example = {"data": {"names": ["a", "b"], "ndarray": [[1.0, 2.0]]}}
    paths: dict[str, Any] = {}
    for prefix, params in (
        ("/seldon/{deployment}", [deployment]),
        ("/seldon/{namespace}/{deployment}", [namespace, deployment]),
        ("", headers),
    ):
        for version in sorted(API_VERSIONS):
            base = f"{prefix}/api/{version}"
            paths[f"{base}/predictions"] = post_operation(
                "Predict through the deployment's graph",
                "SeldonMessage",
                errors=errors,
                parameters=params,
                example=example,
            )
            paths[f"{base}/feedback"] = post_operation(
                "Send feedback (answers {})",
                "Feedback",
                answer_schema="Empty",
                errors=errors,
                parameters=params,
            )
        get_errors = ("401", "404", "405", "503", "504")
        paths[f"{prefix}/api/v1.0/metadata"] = get_operation(
            "Graph metadata", schema="GraphMetadata", errors=get_errors, parameters=params
        )
        paths[f"{prefix}/api/v1.0/metadata/{{model}}"] = get_operation(
            "Model metadata of one node",
            schema="ModelMetadata",
            errors=get_errors,
            parameters=[*params, model],
        )
    for path, summary in (("/ping", "pong"), ("/live", "live")):
        paths[path] = get_operation(summary, "text/plain", errors=("405",))
    ready = get_operation("ready, or 503 with the reason", "text/plain", errors=("405",))
    ready["get"]["responses"]["503"] = {"description": "not ready", "content": {"text/plain": {}}}
    paths["/ready"] = ready
    paths["/pause"] = get_operation("Take the gateway out of rotation", "text/plain", errors=("405",))
    paths["/unpause"] = get_operation("Put the gateway back into rotation", "text/plain", errors=("405",))
    paths["/metrics"] = paths["/prometheus"] = get_operation(
        "Prometheus metrics", "text/plain", errors=("405",)
    )
    admin_errors = {code: ERRORS[code] for code in ("400", "401", "404")}
    paths["/admin/deployments"] = {
        **get_operation("List deployments", errors=("400", "401", "404")),
        "put": {
            "summary": "Apply a manifest",
            "responses": {"200": {"description": "applied"}, **admin_errors},
        },
    }
    paths["/admin/deployments/{namespace}/{name}"] = {
        "parameters": [
            {"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
        ],
        **get_operation("One deployment with its status", errors=("400", "401", "404")),
        "delete": {
            "summary": "Delete a deployment",
            "responses": {"200": {"description": "deleted"}, **admin_errors},
        },
    }
    return document("Seldon Serving gateway", paths)
