"""Who may see the dashboard (docs/dashboard.md), driven in-process through the gateway's REST app
with the client address a server would give: another host is refused unless --dashboard-public,
and with an admin token every dashboard request needs it (Basic password or Bearer)."""

from __future__ import annotations

import asyncio
import base64

import httpx

from seldon_serving.deploy.control import ControlPlane
from seldon_serving.deploy.records import Records
from seldon_serving.engine.plane import DataPlane
from seldon_serving.servers.admin import AdminAccess, token_digest
from seldon_serving.servers.dashboard import Dashboard, shown_event
from seldon_serving.servers.gateway_rest import GatewayApp
from seldon_serving.servers.metrics import Metrics
from seldon_serving.servers.oauth import OAuthService
from seldon_serving.state.memory import MemoryStore

TOKEN = "s3cret-admin-token"


def _app(*, public: bool = False, token: str | None = None) -> GatewayApp:
    store = MemoryStore()
    plane = DataPlane()
    metrics = Metrics()
    control = ControlPlane(Records(store, OAuthService(store), "test"), plane, store)
    access = AdminAccess(token_digest(token) if token else None, "127.0.0.1:8004")
    dashboard = Dashboard(control, plane, metrics, access, public=public)
    return GatewayApp(plane, metrics, admin=control, access=access, dashboard=dashboard)


def _get(app: GatewayApp, path: str, client: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client, 51000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            return await http.get(path, headers=headers)

    return asyncio.run(get())


def test_another_host_is_refused_unless_public() -> None:
    r = _get(_app(), "/dashboard", "192.0.2.7")
    assert r.status_code == 403
    info = r.json()["status"]["info"]
    assert "client 192.0.2.7" in info and "--dashboard-public" in info and "\n" not in info
    assert (_get(_app(), "/dashboard/static/dashboard.js", "192.0.2.7")).status_code == 403
    page = _get(_app(public=True), "/dashboard", "192.0.2.7")
    assert page.status_code == 200 and '<main id="deployments"' in page.text
    # Only the package's own files run in the page.
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    loopback = _get(_app(), "/dashboard/snapshot.json", "127.0.0.1")
    assert loopback.status_code == 200 and loopback.json()["deployments"] == []


def test_admin_token_is_needed_when_the_server_has_one() -> None:
    app = _app(token=TOKEN)
    r = _get(app, "/dashboard", "127.0.0.1")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Basic ")  # the browser asks for it
    assert "admin token" in r.json()["status"]["info"]
    wrong = base64.b64encode(b"me:not-the-token").decode()
    assert (_get(app, "/dashboard", "127.0.0.1", {"authorization": f"Basic {wrong}"})).status_code == 401
    right = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
    assert (_get(app, "/dashboard", "127.0.0.1", {"authorization": f"Basic {right}"})).status_code == 200
    bearer = {"authorization": f"Bearer {TOKEN}"}
    assert (_get(app, "/dashboard/snapshot.json", "127.0.0.1", bearer)).status_code == 200
    # The token never lets another host in without --dashboard-public.
    assert (_get(app, "/dashboard", "192.0.2.7", bearer)).status_code == 403


def test_payloads_are_redacted_unless_enabled() -> None:
    event = {"type": "io.seldon.serving.inference.request", "requestid": "p1", "data": {"x": "secret"}}
    hidden = shown_event(event, payloads=False)
    assert hidden["data"] is None and hidden["requestid"] == "p1" and "secret" not in str(hidden)
    assert shown_event(event, payloads=True)["data"] == '{"x":"secret"}'
    long = shown_event({**event, "data": "y" * 5000}, payloads=True)["data"]
    assert len(long) == 2001 and long.endswith("…")
