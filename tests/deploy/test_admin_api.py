"""The gateway's REST edge in-process: which paths reach which deployment, and who may
use the admin API on the public port (the token, never the client's address)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from seldon_serving.deploy.control import ControlPlane
from seldon_serving.deploy.records import Records
from seldon_serving.engine.plane import DataPlane
from seldon_serving.servers.admin import AdminAccess, token_digest
from seldon_serving.servers.gateway_rest import GatewayApp, parse_api_path
from seldon_serving.servers.metrics import Metrics
from seldon_serving.servers.oauth import OAuthService
from seldon_serving.state import SqliteStore
from tests.deploy.gateway import example_model


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/seldon/iris/api/v0.1/predictions", ("predictions", None, "iris", "")),
        ("/seldon/iris/api/v1.0/feedback", ("feedback", None, "iris", "")),
        ("/seldon/prod/iris/api/v1.0/predictions", ("predictions", "prod", "iris", "")),
        ("/seldon/api/api/v0.1/predictions", ("predictions", None, "api", "")),  # a deployment named api
        ("/seldon/iris/api/v1.0/metadata/model", ("metadata", None, "iris", "model")),
        ("/api/v1.0/predictions", ("predictions", None, None, "")),
        ("/api/v0.1/feedback", ("feedback", None, None, "")),
        ("/seldon/iris/api/v2.0/predictions", None),
        ("/seldon/iris/predictions", None),
        ("/ready", None),
    ],
)
def test_api_paths(path: str, target: tuple | None) -> None:
    assert parse_api_path(path) == target


TOKEN = "s3cret-admin-token"
AUTH = f"Bearer {TOKEN}"


def call(
    app: GatewayApp,
    method: str,
    path: str,
    body: Any = None,
    client: str = "127.0.0.1",
    authorization: str | None = AUTH,
) -> tuple[int, Any]:
    raw = json.dumps(body).encode() if body is not None else b""
    headers = [(b"content-type", b"application/json")]
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": headers,
        "query_string": b"",
        "client": (client, 50000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    payload = sent[1]["body"]
    try:
        return sent[0]["status"], json.loads(payload)
    except ValueError:
        return sent[0]["status"], payload.decode()


def gateway_app(tmp_path: Path, access: AdminAccess) -> GatewayApp:
    store = SqliteStore(tmp_path / "state.db")
    plane = DataPlane()
    control = ControlPlane(Records(store, OAuthService(store)), plane, store)
    return GatewayApp(plane, Metrics(), admin=control, access=access)


@pytest.fixture
def app(tmp_path: Path) -> GatewayApp:
    """A gateway started with an admin token: its public port answers the admin API to it."""
    return gateway_app(tmp_path, AdminAccess(token_digest(TOKEN), "127.0.0.1:8004"))


def test_admin_lifecycle_through_the_rest_edge(app: GatewayApp) -> None:
    status, body = call(app, "PUT", "/admin/deployments", {"manifest": example_model("iris")})
    assert status == 200 and body["result"] == "created"
    status, body = call(app, "POST", "/api/v1.0/predictions", {"data": {"ndarray": [[1.0, 2.0]]}})
    assert status == 200 and body["data"]["names"] == ["proba"]
    status, body = call(app, "GET", "/admin/deployments/default/iris")
    assert status == 200 and body["manifest"]["status"]["state"] == "Available"
    status, body = call(app, "DELETE", "/admin/deployments/default/iris")
    assert status == 200 and body["result"] == "deleted"
    status, body = call(app, "GET", "/admin/deployments/default/iris")
    assert status == 404 and "'iris'" in body["status"]["info"]
    status, body = call(app, "PUT", "/admin/deployments", {"nothing": 1})
    assert status == 400 and "manifest" in body["status"]["info"]


def test_the_public_port_answers_the_admin_api_only_to_the_token_whatever_the_address(
    app: GatewayApp,
) -> None:
    manifest = {"manifest": example_model("iris")}
    for client in ("127.0.0.1", "::1", "10.1.2.3"):  # a proxy on this host looks like loopback
        status, body = call(app, "PUT", "/admin/deployments", manifest, client=client, authorization=None)
        assert status == 401 and "Authorization: Bearer <token>" in body["status"]["info"]
        assert body["status"]["status"] == "FAILURE"
        status, body = call(app, "GET", "/admin/deployments", client=client, authorization="Bearer wrong")
        assert (
            status == 401
            and body["status"]["info"] == "the admin token sent is not this server's admin token"
        )
        assert call(app, "GET", "/pause", client=client, authorization=None)[0] == 401
        assert call(app, "GET", "/metrics", client=client, authorization=None)[0] == 401
    status, body = call(app, "PUT", "/admin/deployments", manifest, client="10.1.2.3")
    assert status == 200 and body["result"] == "created"
    assert call(app, "GET", "/admin/deployments", authorization=f"bearer {TOKEN}")[0] == 200
    assert call(app, "GET", "/metrics", client="10.1.2.3")[0] == 200
    # health and predictions are for everyone
    assert call(app, "GET", "/ready", authorization=None) == (200, "ready")
    answer = call(
        app, "POST", "/api/v1.0/predictions", {"data": {"ndarray": [[1.0, 2.0]]}}, authorization=None
    )
    assert answer[0] == 200


def test_without_a_token_the_public_port_points_to_the_admin_port(tmp_path: Path) -> None:
    app = gateway_app(tmp_path, AdminAccess(None, "127.0.0.1:8004"))
    for path in ("/admin/deployments", "/pause", "/unpause"):
        status, body = call(app, "GET", path, authorization=None)
        assert status == 404 and "admin port, 127.0.0.1:8004" in body["status"]["info"], path
        assert call(app, "GET", path, authorization=AUTH)[0] == 404  # no token can open it
    status, body = call(app, "GET", "/metrics", authorization=None)
    assert status == 404 and "--public-metrics" in body["status"]["info"]
    assert not app.plane.paused
    public = gateway_app(tmp_path / "other", AdminAccess(None, None, public_metrics=True))
    status, body = call(public, "GET", "/metrics", authorization=None)
    assert status == 200 and isinstance(body, str)  # the exposition text, not a FAILURE body
    status, body = call(public, "GET", "/admin/deployments", authorization=None)
    assert status == 404 and "no admin port" in body["status"]["info"]


def test_cors_preflight_and_unknown_paths(app: GatewayApp) -> None:
    status, _ = call(app, "OPTIONS", "/seldon/iris/api/v1.0/predictions")
    assert status == 204
    status, body = call(app, "GET", "/nowhere")
    assert status == 404 and body["status"]["status"] == "FAILURE"
