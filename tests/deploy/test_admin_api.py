"""The gateway's REST edge in-process: which paths reach which deployment, and who may
use the admin API."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from seldon_serving.deploy.control import ControlPlane
from seldon_serving.deploy.records import Records
from seldon_serving.engine.plane import DataPlane
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


def call(
    app: GatewayApp, method: str, path: str, body: Any = None, client: str = "127.0.0.1"
) -> tuple[int, Any]:
    raw = json.dumps(body).encode() if body is not None else b""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(b"content-type", b"application/json")],
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


@pytest.fixture
def app(tmp_path: Path) -> GatewayApp:
    store = SqliteStore(tmp_path / "state.db")
    plane = DataPlane()
    return GatewayApp(plane, Metrics(), admin=ControlPlane(Records(store, OAuthService(store)), plane, store))


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


def test_admin_api_answers_only_this_host_by_default(app: GatewayApp) -> None:
    status, body = call(
        app, "PUT", "/admin/deployments", {"manifest": example_model("iris")}, client="10.1.2.3"
    )
    assert status == 401 and "--allow-remote-admin" in body["status"]["info"]
    assert call(app, "GET", "/admin/deployments", client="10.1.2.3")[0] == 401
    assert call(app, "GET", "/admin/deployments", client="::1")[0] == 200
    # predictions are for everyone
    assert (
        call(app, "POST", "/api/v1.0/predictions", {"data": {"ndarray": [[1.0]]}}, client="10.1.2.3")[0]
        == 404
    )


def test_cors_preflight_and_unknown_paths(app: GatewayApp) -> None:
    status, _ = call(app, "OPTIONS", "/seldon/iris/api/v1.0/predictions")
    assert status == 204
    status, body = call(app, "GET", "/nowhere")
    assert status == 404 and body["status"]["status"] == "FAILURE"
