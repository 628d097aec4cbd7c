"""`seldon serve`: the gateway and its local control plane, in one or several workers.

The parent process validates and stores the manifests it was started with, then forks
the workers (and, with --reload, the watcher that re-applies edited manifests and code:
`deploy.reload`); every worker opens the state store itself (after the fork), builds every
stored deployment before it opens its ports, and follows later changes by polling.
"""

from __future__ import annotations

from pathlib import Path

from seldon_serving.components.servers import load_server_config, register_server
from seldon_serving.deploy.control import ControlPlane
from seldon_serving.deploy.files import Manifest
from seldon_serving.deploy.k8s.front import build_forwarding_deployment
from seldon_serving.deploy.records import Records, server_id
from seldon_serving.deploy.reload import start_watcher
from seldon_serving.engine.compile import set_model_places
from seldon_serving.engine.deployment import build_deployment
from seldon_serving.engine.plane import DEFAULT_NAMESPACE
from seldon_serving.protocol.errors import ServingError
from seldon_serving.servers.admin import AdminAccess, AdminApp, AdminRoutes
from seldon_serving.servers.dashboard import Dashboard
from seldon_serving.servers.gateway_grpc import gateway_handlers
from seldon_serving.servers.gateway_rest import GatewayApp
from seldon_serving.servers.metrics import ExperimentGauges, Metrics
from seldon_serving.servers.oauth import OAuthService
from seldon_serving.servers.observed_plane import observed_plane
from seldon_serving.servers.runner import Edges, claim_ports, serve
from seldon_serving.settings import GatewaySettings, ServerSettings
from seldon_serving.state import open_store


class StateDirError(ServingError):
    """The state directory cannot be created or written."""


def configure_models(settings: GatewaySettings) -> None:
    """Register the user's model servers and say where models are found, in this process.
    Idempotent: the parent does it before it checks the manifests, and every worker again
    (a worker forked from the parent has it already; one started otherwise would not)."""
    if settings.server_config is not None:
        load_server_config(settings.server_config)
    for spec in settings.servers:
        register_server(spec)
    set_model_places(settings.models)


def gateway_edges(settings: GatewaySettings, server: ServerSettings, server_name: str = "local") -> Edges:
    """One worker's edges (built after the fork: nothing here may be shared between workers)."""
    configure_models(settings)
    store = open_store(settings.store_target)
    metrics = Metrics()
    metrics.add_view(ExperimentGauges(store))  # A/B statistics, from the store: every worker's
    plane, request_logger = observed_plane(
        metrics,
        service="seldon-gateway",
        request_logger_url=settings.request_logger_url,
        queue_size=settings.request_logger_queue,
        http_port=server.http_port,
    )
    oauth = OAuthService(store, settings.oauth_ttl)
    records = Records(store, oauth, server_name)
    control = ControlPlane(
        records,
        plane,
        store,
        poll_interval=settings.poll_interval,
        max_message=server.max_message,
        builder=build_forwarding_deployment if settings.cluster_engines else build_deployment,
        execution=settings.execution,
        runs_nodes=not settings.cluster_engines,
        oauth=settings.oauth,
        node_tls=server.node_tls,
    )

    async def stop() -> None:
        await dashboard.stop()
        await control.stop()
        await request_logger.close()  # queued events get a moment; the rest are counted dropped
        store.close()

    admin_port = f"{server.admin_host}:{server.admin_port}" if server.admin_port is not None else None
    access = AdminAccess(settings.admin_token, admin_port, settings.public_metrics)
    # Read-only; it reads what exists (the control plane's view, Prometheus, the logger's ring).
    dashboard = Dashboard(
        control,
        plane,
        metrics,
        access,
        public=settings.dashboard_public,
        payloads=settings.dashboard_payloads,
        recent_events=request_logger.recent_events,
        store=store,  # where the workers' recent events meet while a page is open
    )

    async def start() -> None:
        await control.start()
        dashboard.start()

    return Edges(
        asgi_app=GatewayApp(
            plane,
            metrics,
            admin=control,
            access=access,
            max_body=server.max_message,
            oauth=oauth if settings.oauth else None,
            dashboard=dashboard,
        ),
        admin_app=AdminApp(AdminRoutes(control, plane, metrics, server.max_message), access),
        grpc_handlers=gateway_handlers(plane, oauth if settings.oauth else None),
        on_start=start,
        on_stop=stop,
    )


def store_manifests(
    store_target: str | Path, manifests: list[Manifest], server_name: str = "local"
) -> list[tuple[str, str]]:
    """Apply the start-up manifests to the records: [(name, created|configured|configured (code
    changed)|unchanged)] — the code its classes run counts, as it does for `seldon apply`."""
    store = open_store(store_target)
    try:
        records = Records(store, OAuthService(store), server_name)
        records.reset_runtime()
        out = []
        for item in manifests:
            namespace = item.namespace or DEFAULT_NAMESPACE
            outcome, _ = records.apply(namespace, item.name, item.manifest, item.base_dir, item.code())
            out.append((item.name, outcome))
        return out
    finally:
        store.close()


def serve_gateway(
    manifests: list[Manifest],
    settings: GatewaySettings,
    server: ServerSettings,
    *,
    watch: list[str] | None = None,
) -> int:
    """Serve until stopped; with `watch` (the command line's files and directories), re-apply
    them whenever they or their classes' code change (`deploy.reload`)."""
    if settings.state_store is None:
        try:
            settings.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateDirError(
                f"cannot use {settings.state_dir} as the state directory: {exc.strerror}"
            ) from None
    # The ports first: a second server must not touch the state of the one already serving
    # (and if storing fails, nothing is left holding them).
    claims = claim_ports(server)
    name = server_id()  # before the fork: every worker of this server shares it
    applied = store_manifests(settings.store_target, manifests, name)
    lines = [f"seldondeployment/{name} {outcome}" for name, outcome in applied]
    front = ", OAuth front end on (POST /oauth/token)" if settings.oauth else ""
    where = f"state in {_shown(settings.state_store) if settings.state_store else settings.state_path}"
    lines.append(f"seldon gateway: {server.addresses()}, {server.workers} worker(s){front}, {where}")
    if watch:
        lines.append(f"reloading on changes to {', '.join(watch)} and the code their deployments run")
    factory = lambda: gateway_edges(settings, server, name)  # noqa: E731
    # Forked before the workers, while this process runs no thread: see `deploy.reload`.
    watcher = start_watcher(watch, manifests, settings.store_target, name, claims) if watch else None
    try:
        return serve(factory, server, announce="\n".join(lines), claims=claims)
    finally:
        if watcher is not None:
            watcher.stop()


def _shown(url: str) -> str:
    """A store URL fit for a log line: without its password."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user + ':***@' if user else '***@'}{host}"
    return url
