"""`seldon serve`: the gateway and its local control plane, in one or several workers.

The parent process validates and stores the manifests it was started with, then forks
the workers; every worker opens the state store itself (after the fork), builds every
stored deployment before it opens its ports, and follows later changes by polling.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from seldon_serving.deploy.control import ControlPlane
from seldon_serving.deploy.files import Manifest
from seldon_serving.deploy.records import Records
from seldon_serving.engine.plane import DEFAULT_NAMESPACE, DataPlane
from seldon_serving.servers.gateway_grpc import gateway_handlers
from seldon_serving.servers.gateway_metrics import GatewayMetrics
from seldon_serving.servers.gateway_rest import GatewayApp
from seldon_serving.servers.metrics import Metrics
from seldon_serving.servers.oauth import DEFAULT_TTL, OAuthService
from seldon_serving.servers.runner import Edges, ServeOptions, serve
from seldon_serving.state import open_store

STATE_DIR_ENV = "SELDON_STATE_DIR"
DEFAULT_STATE_DIR = ".seldon-state"
STATE_FILE = "state.db"


def state_dir(given: str | os.PathLike[str] | None = None) -> Path:
    """--state-dir, else $SELDON_STATE_DIR, else ./.seldon-state."""
    chosen = given or os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR
    return Path(chosen).expanduser().resolve()


@dataclass(slots=True)
class GatewaySettings:
    state_path: Path
    poll_interval: float = 0.2
    remote_admin: bool = False
    oauth: bool = False  # the OAuth API front end (Seldon's apife, the seed's withApife)
    oauth_ttl: float = DEFAULT_TTL


def gateway_edges(settings: GatewaySettings, options: ServeOptions) -> Edges:
    """One worker's edges (built after the fork: nothing here may be shared between workers)."""
    store = open_store(settings.state_path)
    metrics = Metrics()
    plane = DataPlane(observer=GatewayMetrics(metrics))
    control = ControlPlane(Records(store), plane, store, poll_interval=settings.poll_interval)
    oauth = OAuthService(store, settings.oauth_ttl) if settings.oauth else None

    async def stop() -> None:
        await control.stop()
        store.close()

    return Edges(
        asgi_app=GatewayApp(
            plane,
            metrics,
            admin=control,
            remote_admin=settings.remote_admin,
            max_body=options.max_message,
            oauth=oauth,
        ),
        grpc_handlers=gateway_handlers(plane, oauth),
        on_start=control.start,
        on_stop=stop,
    )


def store_manifests(state_path: Path, manifests: list[Manifest]) -> list[tuple[str, str]]:
    """Apply the start-up manifests to the records: [(name, created|configured|unchanged)]."""
    store = open_store(state_path)
    try:
        records = Records(store)
        records.reset_runtime()
        out = []
        for item in manifests:
            namespace = (item.manifest.get("metadata") or {}).get("namespace") or DEFAULT_NAMESPACE
            outcome, _ = records.apply(namespace, item.name, item.manifest, item.base_dir)
            out.append((item.name, outcome))
        return out
    finally:
        store.close()


def serve_gateway(
    manifests: list[Manifest],
    options: ServeOptions,
    directory: Path,
    *,
    remote_admin: bool = False,
    oauth: bool = False,
    oauth_ttl: float = DEFAULT_TTL,
) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    settings = GatewaySettings(
        state_path=directory / STATE_FILE, remote_admin=remote_admin, oauth=oauth, oauth_ttl=oauth_ttl
    )
    applied = store_manifests(settings.state_path, manifests)
    parts = []
    if options.http_port is not None:
        parts.append(f"REST on {options.host}:{options.http_port}")
    if options.grpc_port is not None:
        parts.append(f"gRPC on {options.host}:{options.grpc_port}")
    lines = [f"seldondeployment/{name} {outcome}" for name, outcome in applied]
    front = ", OAuth front end on (POST /oauth/token)" if oauth else ""
    workers = f"{options.workers} worker(s)"
    lines.append(f"seldon gateway: {', '.join(parts)}, {workers}{front}, state in {settings.state_path}")
    return serve(lambda: gateway_edges(settings, options), options, announce="\n".join(lines))
